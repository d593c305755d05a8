"""The shared sampling tick: every job due at once is read in one batch and
sent to history as one message; each job keeps its own interval."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Sequence

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.metrics import tick as tick_module
from joblet.metrics.config import MetricsConfig
from joblet.metrics.hub import MetricsHub
from joblet.metrics.sampler import JobSampler
from joblet.metrics.tick import SLACK, SampleTick, advance, due, first_reading_in, take_all
from joblet.resources.interface import Limits
from joblet.resources.null import NullCgroupManager

INTERVAL = 0.2
MANAGER = NullCgroupManager("test")


def sampler(job_id: str, next_at: float = 0.0, *, fresh: bool = True) -> JobSampler:
    made = JobSampler(
        job_id, MANAGER.create(job_id, Limits()), Limits(), interval_s=INTERVAL,
        publish=lambda _s: None, fresh=fresh,
    )  # fmt: skip
    made.next_at = next_at
    return made


def test_due_takes_every_sampler_within_the_slack() -> None:
    samplers = [sampler("a", 10.0), sampler("b", 10.04), sampler("c", 10.06), sampler("d", 11.0)]
    assert [s.job_id for s in due(samplers, 10.0, INTERVAL * SLACK)] == ["a", "b"]


def test_an_early_sampler_keeps_its_phase_and_a_late_tick_does_not_burst() -> None:
    early = sampler("early", 10.04)
    advance(early, 10.0, INTERVAL)
    assert abs(early.next_at - 10.24) < 1e-9
    behind = sampler("behind", 10.0)
    advance(behind, 13.0, INTERVAL)  # the host stalled three seconds
    assert abs(behind.next_at - 13.2) < 1e-9


def test_a_closed_or_failing_sampler_does_not_cost_the_others() -> None:
    closed, broken, fine = sampler("closed"), sampler("broken"), sampler("fine")
    closed.closed = True

    def fail() -> pb.JobMetricsSample | None:
        raise OSError("the group vanished")

    broken.take = fail  # type: ignore[method-assign]
    taken = take_all([closed, broken, fine])
    assert [(s.job_id, got is not None) for s, got in taken] == [("fine", True)]


async def test_all_jobs_due_together_go_out_as_one_message_per_tick() -> None:
    batches: list[list[tuple[str, int, bytes]]] = []

    def sink(records: Sequence[tuple[str, int, bytes]]) -> None:
        batches.append(list(records))

    jobs = [f"job-{i}" for i in range(50)]
    config = MetricsConfig(interval_s=INTERVAL)
    async with MetricsHub(config, batch_sink=sink) as hub:
        for job in jobs:
            hub.start_job(job, MANAGER.create(job, Limits()), Limits(), from_start=True)
        deadline = time.monotonic() + 10
        while len(batches) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await hub.finish_job("job-0")
        after_final = len(batches)
        await asyncio.sleep(3 * INTERVAL)
        for job in jobs[1:]:
            await hub.finish_job(job)
    ticks = batches[: after_final - 1]  # the last one before it may be job-0's final
    assert len(ticks) >= 3
    assert all(sorted(job for job, _t, _p in tick) == sorted(jobs) for tick in ticks)
    # each job's samples one interval apart
    stamps = [t for job, t, _p in (r for tick in ticks for r in tick) if job == "job-7"]
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(stamps)]
    assert all(INTERVAL * 0.5 < gap < INTERVAL * 3 for gap in gaps), gaps
    # nothing of job-0 after its final sample
    later = [job for tick in batches[after_final:] for job, _t, _p in tick]
    assert "job-0" not in later and "job-1" in later


async def test_a_reattached_job_gets_its_baseline_first_not_published() -> None:
    published: list[pb.JobMetricsSample] = []
    async with MetricsHub(MetricsConfig(interval_s=INTERVAL)) as hub:
        began = time.monotonic()
        hub.start_job("again", MANAGER.create("again", Limits()), Limits())
        with hub.subscribe("again") as stream:
            published.append(await asyncio.wait_for(anext(stream), 5))
        took = time.monotonic() - began
        await hub.finish_job("again")
    # not at once (the baseline is not published), but about an interval on
    assert took >= INTERVAL * (1 - SLACK) - 0.01
    recent = hub.recent("again")
    assert recent[0] == published[0] and len(recent) == 2  # the tick's sample, the final one


def test_a_baseline_waits_the_delay_but_never_past_an_interval() -> None:
    assert first_reading_in(True, 5.0) == 5.0
    assert first_reading_in(False, 5.0) == tick_module.BASELINE_DELAY_S
    assert first_reading_in(False, 0.5) == 0.5


async def test_reattached_jobs_are_not_read_while_the_restart_answers_its_first_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A restart re-attaches thousands of jobs at once: their baselines are
    read a moment later, not in the same turn as the first calls."""
    monkeypatch.setattr(tick_module, "BASELINE_DELAY_S", 0.5)
    read_at: list[float] = []
    tick = SampleTick(10.0, lambda _samples: None)
    runner = asyncio.create_task(tick.run())
    try:
        jobs = [sampler(f"again-{i}", fresh=False) for i in range(3)]
        for job in jobs:
            take = job.take

            def timed(take: object = take) -> pb.JobMetricsSample | None:
                read_at.append(time.monotonic())
                return take()  # type: ignore[operator, no-any-return]

            job.take = timed  # type: ignore[method-assign]
        began = time.monotonic()
        for job in jobs:
            tick.add(job)
        await asyncio.sleep(0.2)
        assert read_at == []  # not yet
        deadline = time.monotonic() + 10
        while len(read_at) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(read_at) == 3  # all three in one batch, about the delay on
        assert min(read_at) - began >= 0.5 - 0.01
        assert all(job.has_baseline for job in jobs)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def test_a_reading_in_flight_as_its_job_ends_is_not_published_after_the_final() -> None:
    published: list[tuple[str, int, bytes]] = []
    config = MetricsConfig(interval_s=INTERVAL)
    async with MetricsHub(config, batch_sink=published.extend) as hub:
        sampler = hub.start_job("j", MANAGER.create("j", Limits()), Limits(), from_start=True)
        reading, release = threading.Event(), threading.Event()
        take = sampler.take

        def slow_take() -> pb.JobMetricsSample | None:
            reading.set()
            release.wait(10)
            return take()

        sampler.take = slow_take  # type: ignore[method-assign]
        assert await asyncio.to_thread(reading.wait, 10)
        final = await hub.finish_job("j")  # while the tick still reads the job
        release.set()
        await asyncio.sleep(3 * INTERVAL)
    assert final is not None
    assert [t for job, t, _p in published if job == "j"] == [final.timestamp]
