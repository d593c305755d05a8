"""One shared tick for every job's sampler.

Each job keeps its own phase (`next_at`, one interval after its start), but
the tick takes every sampler due within a quarter interval of the earliest
one in one worker thread and publishes the samples as one batch. Per sample
that saves a thread hop, a timer and a persist message; a sampler taken
early keeps its phase, so its samples stay one interval apart.

    tick = SampleTick(interval_s, publish_batch)
    task = asyncio.create_task(tick.run())
    tick.add(sampler)       # due soon (baseline) or one interval from now
    tick.remove(job_id)     # before its final sample
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence

from joblet.api import joblet_pb2 as pb
from joblet.metrics.sampler import JobSampler

_log = logging.getLogger(__name__)
SLACK = 0.25  # of an interval: how early a sampler may be taken with an earlier one
# A re-attached job's baseline (an unpublished first reading) waits this long
# (at most an interval): a restart re-attaches thousands at once, and reading
# them all while the daemon answers its first calls slowed those answers.
BASELINE_DELAY_S = 2.0

PublishBatch = Callable[[Sequence[pb.JobMetricsSample]], None]


def due(samplers: Iterable[JobSampler], now: float, slack_s: float) -> list[JobSampler]:
    """The samplers to take now: every one due by `now + slack_s` (pure)."""
    return [s for s in samplers if s.next_at <= now + slack_s]


def next_due(samplers: Iterable[JobSampler]) -> float | None:
    return min((s.next_at for s in samplers), default=None)


def first_reading_in(has_baseline: bool, interval_s: float) -> float:
    """Seconds from a sampler's start to its first reading (pure)."""
    return interval_s if has_baseline else min(BASELINE_DELAY_S, interval_s)


def advance(sampler: JobSampler, now: float, interval_s: float) -> None:
    """Its next turn, one interval after this one's due time; a tick that ran
    late (a slow batch, a busy host) does not make it catch up in a burst."""
    sampler.next_at += interval_s
    if sampler.next_at <= now:
        sampler.next_at = now + interval_s


def take_all(batch: Sequence[JobSampler]) -> list[tuple[JobSampler, pb.JobMetricsSample | None]]:
    """Read every sampler of the batch (blocking: runs in a worker thread).
    One job's failure (its group vanishing mid-read) does not cost the others."""
    out: list[tuple[JobSampler, pb.JobMetricsSample | None]] = []
    for sampler in batch:
        if sampler.closed:
            continue
        try:
            out.append((sampler, sampler.take()))
        except Exception:
            _log.exception("sampling job %s failed", sampler.job_id)
    return out


class SampleTick:
    def __init__(self, interval_s: float, publish: PublishBatch) -> None:
        self.interval_s = interval_s
        self._publish = publish
        self._samplers: dict[str, JobSampler] = {}
        self._changed = asyncio.Event()

    def add(self, sampler: JobSampler) -> None:
        """A job without a baseline is read shortly (BASELINE_DELAY_S); a
        fresh one an interval on."""
        now = asyncio.get_running_loop().time()
        sampler.next_at = now + first_reading_in(sampler.has_baseline, self.interval_s)
        self._samplers[sampler.job_id] = sampler
        self._changed.set()

    def remove(self, job_id: str) -> JobSampler | None:
        return self._samplers.pop(job_id, None)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._samplers

    def jobs(self) -> list[str]:
        return list(self._samplers)

    async def run(self) -> None:
        """Until cancelled: sleep to the earliest due sampler (or a new one), take the batch."""
        loop = asyncio.get_running_loop()
        slack_s = self.interval_s * SLACK
        while True:
            self._changed.clear()
            wake = next_due(self._samplers.values())
            now = loop.time()
            if wake is None or wake > now:
                timeout = None if wake is None else wake - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
                continue
            batch = due(self._samplers.values(), now, slack_s)
            for sampler in batch:
                advance(sampler, now, self.interval_s)
            taken = await asyncio.to_thread(take_all, batch)
            # A job that ended while its batch was read has its final sample
            # already: the tick's reading of it is dropped.
            samples = [s for sampler, s in taken if s is not None and not sampler.closed]
            if samples:
                self._publish(samples)
