"""The collector: every `interval` it plans which finished jobs to forget
(plan.py) and forgets them in small batches, yielding to the event loop
between batches and removing directories in a thread, so RunJob and every
other call go on being served while ten thousand jobs are collected.

A collected job is gone from the table, the state store, the listings, its
directory (workspace and live log); persist keeps its history, and the
collected-id memory (collected.py) lets GetJobStatus say what happened."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from joblet.config.model import JobRetention
from joblet.jobs.model import Job
from joblet.retention.collected import CollectedIds, encode
from joblet.retention.plan import JobFacts, Unit, plan

log = logging.getLogger(__name__)

BATCH_JOBS = 16  # jobs forgotten per turn of the event loop
FACTS_PER_TURN = 500  # jobs looked at per turn while planning


class Jobs(Protocol):
    """The job manager's side."""

    def snapshot(self) -> list[Job]: ...

    def collect(self, job_id: str) -> Job | None: ...

    def log_copying(self, job_id: str) -> bool: ...

    async def remove_dirs(self, job_ids: list[str]) -> list[str]: ...

    async def settle(self) -> bool: ...


class Workflows(Protocol):
    """The workflow shell's side: which workflow a job is in, and dropping a
    finished one (its record) once its jobs are collected."""

    def group_of(self, job_id: str) -> tuple[str, bool] | None:
        """(workflow id, whether it is finished), or None."""
        ...

    def forget_finished(self, workflow_id: str) -> bool: ...


class RecordStore(Protocol):
    """The state client: collected-id batches are records of their own."""

    def put_record(self, key: str, record: bytes) -> None: ...

    def delete_record(self, key: str) -> None: ...


class Collector:
    def __init__(
        self,
        jobs: Jobs,
        policy: JobRetention,
        collected: CollectedIds,
        store: RecordStore,
        workflows: Workflows | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jobs = jobs
        self._policy = policy
        self._collected = collected
        self._store = store
        self._workflows = workflows
        self._clock = clock
        self.total = 0  # jobs collected since the start

    async def run(self) -> None:
        """Sweep every interval until cancelled; a failed sweep is logged."""
        while True:
            await asyncio.sleep(self._policy.interval_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("job retention: a sweep failed")

    async def sweep(self) -> int:
        """Collect what the policy says is due now; how many jobs went."""
        began = time.monotonic()
        now = self._clock()
        for batch in self._collected.expired(now):
            self._store.delete_record(batch.key)
        units = plan(await self._facts(), self._policy, now)
        count = 0
        for part in _parts(units, BATCH_JOBS):
            count += await self._collect(part, now)
            # The deletions stored before the next batch: a RunJob waiting
            # for its record never waits behind thousands of them.
            await self._jobs.settle()
        if count:
            took = time.monotonic() - began
            log.info("job retention: collected %d finished job(s) in %.3fs", count, took)
            self.total += count
        return count

    async def _facts(self) -> list[JobFacts]:
        facts: list[JobFacts] = []
        jobs = self._jobs.snapshot()
        for start in range(0, len(jobs), FACTS_PER_TURN):
            for job in jobs[start : start + FACTS_PER_TURN]:
                facts.append(self._fact(job))
            await asyncio.sleep(0)
        return facts

    def _fact(self, job: Job) -> JobFacts:
        # Its log still on the way to persist: not yet (its history would be cut).
        final = job.status.is_final and not self._jobs.log_copying(job.id)
        ended = job.ended_at or job.created_at
        group = self._workflows.group_of(job.id) if self._workflows is not None else None
        if group is None:
            return JobFacts(job.id, final, ended)
        return JobFacts(job.id, final, ended, group[0], not group[1])

    async def _collect(self, units: list[Unit], now: float) -> int:
        gone: list[tuple[str, float]] = []
        for unit in units:
            if unit.group and self._workflows is not None:
                group = self._workflows.group_of(unit.ids[0])
                if group is not None and not group[1]:
                    continue  # a job was added to it meanwhile
            jobs = [job for job in map(self._jobs.collect, unit.ids) if job is not None]
            gone += [(job.id, job.ended_at or job.created_at) for job in jobs]
            if unit.group and self._workflows is not None:
                self._workflows.forget_finished(unit.group)
        if not gone:
            return 0
        batch = self._collected.new_batch(now, gone)
        self._store.put_record(batch.key, encode(batch))
        for failure in await self._jobs.remove_dirs([job_id for job_id, _ in gone]):
            log.warning("job retention: %s", failure)
        return len(gone)


def _parts(units: list[Unit], size: int) -> list[list[Unit]]:
    """`units` in runs of about `size` jobs (a workflow stays whole)."""
    parts: list[list[Unit]] = [[]]
    count = 0
    for unit in units:
        if parts[-1] and count + len(unit.ids) > size:
            parts.append([])
            count = 0
        parts[-1].append(unit)
        count += len(unit.ids)
    return [part for part in parts if part]
