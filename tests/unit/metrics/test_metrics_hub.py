"""MetricsHub: bounded recent samples, live subscribers, sink, history, and the
job-metrics RPC functions on top of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.daemon import metrics_rpc
from joblet.errors import InvalidArgument, NotFound
from joblet.metrics.config import MetricsConfig
from joblet.metrics.hub import MIN_RING, MetricsHub
from joblet.resources.interface import Limits
from joblet.resources.null import NullCgroupManager

S = 1_000_000_000


def sample(job: str, t: int, cpu: float = 0.0) -> pb.JobMetricsSample:
    return pb.JobMetricsSample(jobId=job, timestamp=t * S, cpu=pb.JobCPUMetrics(usagePercent=cpu))


async def test_ring_is_bounded_and_history_filters_by_time() -> None:
    async with MetricsHub(MetricsConfig(history_samples=3)) as hub:
        for t in range(1, 6):
            hub.publish(sample("a", t))
        assert [s.timestamp // S for s in hub.recent("a")] == [3, 4, 5]
        assert [s.timestamp // S for s in await hub.history("a", 4 * S, 0)] == [4, 5]
        assert [s.timestamp // S for s in await hub.history("a", 0, 3 * S)] == [3]


async def test_subscribers_get_live_samples_until_the_end() -> None:
    async with MetricsHub() as hub:
        first, second = hub.subscribe("a"), hub.subscribe("a")
        hub.publish(sample("a", 1))
        hub.publish(sample("b", 1))  # another job's
        hub.publish(sample("a", 2))
        hub.end("a")
        assert [s.timestamp // S async for s in first] == [1, 2]
        assert [s.timestamp // S async for s in second] == [1, 2]
        assert hub.subscriber_count("a") == 0
        assert [s async for s in hub.subscribe("a")] == []  # already ended


async def test_slow_subscriber_drops_oldest_not_the_sampler() -> None:
    async with MetricsHub() as hub:
        with hub.subscribe("a") as sub:
            for t in range(200):
                hub.publish(sample("a", t))
            hub.end("a")
            got = [s.timestamp // S async for s in sub]
        assert got[-1] == 199 and len(got) <= 65


async def test_sink_gets_every_sample_sync_or_async() -> None:
    sent: list[tuple[str, int, bytes]] = []

    async def async_sink(job: str, ts: int, data: bytes) -> None:
        sent.append((job, ts, data))

    async with MetricsHub(sink=async_sink) as hub:
        hub.publish(sample("a", 7))
        await asyncio.sleep(0)
    assert sent == [("a", 7 * S, sample("a", 7).SerializeToString())]

    def failing(job: str, ts: int, data: bytes) -> None:
        raise OSError("persist is down")

    async with MetricsHub(sink=failing) as hub:
        hub.publish(sample("a", 8))  # logged, not raised: sampling goes on
        assert len(hub.recent("a")) == 1


class FakeHistory:
    def __init__(self, samples: list[pb.JobMetricsSample]) -> None:
        self.samples = samples

    async def history(self, job_id: str, from_ns: int, to_ns: int) -> list[pb.JobMetricsSample]:
        return [s for s in self.samples if s.jobId == job_id]


async def test_many_jobs_share_the_recent_samples_and_lose_no_history() -> None:
    """recentSamples bounds the rings of all jobs together (each keeps at
    least MIN_RING); what a ring gave up is read from the history source."""
    stored: list[pb.JobMetricsSample] = []
    config = MetricsConfig(history_samples=720, recent_samples=100)
    async with MetricsHub(config, history_source=FakeHistory(stored)) as hub:
        for t in range(1, 31):
            for job in ("a", "b"):
                stored.append(sample(job, t))
                hub.publish(sample(job, t))
        assert len(hub.recent("a")) == 30  # two jobs: 50 each, all kept
        jobs = [f"j{k}" for k in range(20)]
        for t in range(1, 31):
            for job in jobs:
                stored.append(sample(job, t, cpu=float(t)))
                hub.publish(sample(job, t, cpu=float(t)))
        assert {len(hub.recent(job)) for job in jobs} == {MIN_RING}
        assert [s.timestamp // S for s in hub.recent("j7")] == list(range(19, 31))
        assert [s.timestamp // S for s in await hub.history("j7")] == list(range(1, 31))
        summary = await hub.summary("j7")
        assert (summary.cpu.min, summary.cpu.max) == (1.0, 30.0)  # the whole history


async def test_history_rpc_uses_the_source_and_the_asked_range() -> None:
    source = FakeHistory([sample("a", t) for t in (5, 1, 3)])
    async with MetricsHub(history_source=source) as hub:
        res = await metrics_rpc.get_job_metrics_history(
            hub, "a", pb.JobMetricsHistoryRequest(uuid="a", fromTimestamp=2)
        )
        assert [s.timestamp // S for s in res.samples] == [3, 5]
        with pytest.raises(InvalidArgument):
            await metrics_rpc.get_job_metrics_history(
                hub, "a", pb.JobMetricsHistoryRequest(fromTimestamp=9, toTimestamp=2)
            )
        summary = await metrics_rpc.get_job_metrics_summary(
            hub, "a", pb.JobMetricsSummaryRequest(uuid="a")
        )
        assert summary.cpu.max == 0.0 and summary.memory.max == 0.0


class ProbedHistory(FakeHistory):
    """A source that can tell whether a job has any stored sample; `delay_s`
    stands for a slow store."""

    def __init__(self, samples: list[pb.JobMetricsSample], delay_s: float = 0.0) -> None:
        super().__init__(samples)
        self.delay_s = delay_s

    async def has_history(self, job_id: str) -> bool:
        await asyncio.sleep(self.delay_s)
        return any(s.jobId == job_id for s in self.samples)


async def test_archived_history_is_served_and_no_history_is_not_found() -> None:
    source = ProbedHistory([sample("a", t, cpu=t) for t in (1, 2, 3)])
    async with MetricsHub(history_source=source) as hub:
        res = await metrics_rpc.get_job_metrics_history(
            hub, "a", pb.JobMetricsHistoryRequest(uuid="a"), archived=True
        )
        assert [s.timestamp // S for s in res.samples] == [1, 2, 3]
        summary = await metrics_rpc.get_job_metrics_summary(
            hub, "a", pb.JobMetricsSummaryRequest(uuid="a"), archived=True
        )
        assert summary.cpu.max == 3.0
        # A job of this node may have no sample yet; an archived one without
        # any is no job at all.
        assert await hub.history_bytes("b") == b""
        with pytest.raises(NotFound):
            await hub.history_bytes("b", archived=True)
        with pytest.raises(NotFound):
            await hub.summary("b", archived=True)
        assert await hub.archived_exists("a") and not await hub.archived_exists("b")
    async with MetricsHub() as hub:  # no persist: nothing archived
        with pytest.raises(NotFound):
            await hub.history_bytes("a", archived=True)
        assert not await hub.archived_exists("a")


async def test_archived_probe_gives_up_on_a_slow_store() -> None:
    source = ProbedHistory([sample("a", 1)], delay_s=5.0)
    async with MetricsHub(history_source=source) as hub:
        assert not await hub.archived_exists("a", timeout_s=0.05)


async def test_stream_of_a_finished_job_is_its_history() -> None:
    async with MetricsHub() as hub:
        for t in (1, 2):
            hub.publish(sample("a", t))
        hub.end("a")
        got = [s async for s in metrics_rpc.stream_job_metrics(hub, "a", running=False)]
        assert [s.timestamp // S for s in got] == [1, 2]


async def test_stream_of_a_running_job_is_latest_then_live() -> None:
    async with MetricsHub() as hub:
        hub.publish(sample("a", 1))
        hub.publish(sample("a", 2))
        stream = metrics_rpc.stream_job_metrics(hub, "a", running=True)
        assert (await anext(stream)).timestamp == 2 * S
        reader = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.01)
        hub.publish(sample("a", 3))
        assert (await reader).timestamp == 3 * S
        hub.end("a")
        assert [s async for s in stream] == []


async def test_sampler_task_and_final_sample(tmp_path: Path) -> None:
    group = NullCgroupManager("test").create("job-x", Limits())
    async with MetricsHub(MetricsConfig(interval_s=1.0)) as hub:
        hub.start_job("job-x", group, Limits())
        assert hub.is_live("job-x")
        with hub.subscribe("job-x") as sub:
            final = await hub.finish_job("job-x")
            got = [s async for s in sub]
        assert final is not None and got == [final]
        assert not hub.is_live("job-x") and hub.recent("job-x") == [final]
        assert await hub.finish_job("job-x") is None


async def test_a_final_first_sample_is_kept_when_every_older_job_is_sampled() -> None:
    """More running jobs than the hub keeps rings for, and a job whose only
    sample is its final one (re-attached, then stopped before its first
    interval): its sample is kept, and the running jobs' rings stay."""
    manager = NullCgroupManager("test")
    async with MetricsHub(MetricsConfig(interval_s=60.0), max_jobs=2) as hub:
        for name in ("run-1", "run-2"):
            hub.start_job(name, manager.create(name, Limits()), Limits())
            hub.publish(sample(name, 1))
        hub.start_job("late", manager.create("late", Limits()), Limits())
        final = await hub.finish_job("late")
        assert final is not None and hub.recent("late") == [final]
        assert len(hub.recent("run-1")) == 1 and len(hub.recent("run-2")) == 1


async def test_a_logs_end_waits_for_the_jobs_final_sample() -> None:
    """The log's end seals the job's history in persist: it waits until the
    final sample was taken (and sent); a job never sampled does not wait."""
    manager = NullCgroupManager("test")
    async with MetricsHub(MetricsConfig(interval_s=60.0)) as hub:
        await asyncio.wait_for(hub.final_taken("never-sampled"), 0.5)
        hub.start_job("job", manager.create("job", Limits()), Limits())
        waiting = asyncio.ensure_future(hub.final_taken("job", timeout=30))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await hub.finish_job("job")
        await asyncio.wait_for(waiting, 1)
        await asyncio.wait_for(hub.final_taken("job"), 0.5)  # once taken, at once


async def test_finish_job_runs_then_on_the_samplers_thread_after_the_sample() -> None:
    """A job's end costs one hop off the loop: the final reading and `then`
    (the cgroup's removal) on one worker thread, the reading first; `then`
    runs when the reading fails, and without a sampler too."""
    import threading

    manager = NullCgroupManager("test")
    seen: list[tuple[str, int]] = []
    async with MetricsHub(MetricsConfig(interval_s=60.0)) as hub:
        group = manager.create("job-t", Limits())
        sampler = hub.start_job("job-t", group, Limits())
        read = sampler.sample

        def reading(*, final: bool = False) -> pb.JobMetricsSample:
            seen.append(("sample", threading.get_ident()))
            return read(final=final)

        sampler.sample = reading  # type: ignore[method-assign]
        final = await hub.finish_job(
            "job-t", then=lambda: seen.append(("then", threading.get_ident()))
        )
        assert final is not None
        assert [what for what, _ in seen] == ["sample", "then"]
        assert seen[0][1] == seen[1][1] != threading.get_ident()

        seen.clear()
        broken = hub.start_job("job-b", manager.create("job-b", Limits()), Limits())

        def failing(*, final: bool = False) -> pb.JobMetricsSample:
            raise OSError("cgroup gone")

        broken.sample = failing  # type: ignore[method-assign]
        with pytest.raises(OSError, match="cgroup gone"):
            await hub.finish_job("job-b", then=lambda: seen.append(("then", 0)))
        assert seen == [("then", 0)]

        seen.clear()
        assert await hub.finish_job("never-sampled", then=lambda: seen.append(("then", 0))) is None
        assert seen == [("then", 0)]
