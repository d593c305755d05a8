"""Preemption, carried out: a job that would have to wait takes the slots of
running preemptible jobs of lower priority (chosen by joblet.jobs.victims).

Each victim is first recorded as being stopped for the new job (so a daemon
restarted meanwhile still knows why it ends), then gets SIGTERM, its grace
period and SIGKILL through its cgroup (joblet.jobs.ending). Its end, STOPPED
"preempted by ID", and its requeue are applied by the ending.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable

from joblet.config.model import DaemonConfig
from joblet.errors import JobletError
from joblet.jobs.ending import JobEnding
from joblet.jobs.model import Job, JobStatus
from joblet.jobs.ports import JobVolumes
from joblet.jobs.priority import Waiting
from joblet.jobs.state_machine import Preempting
from joblet.jobs.table import JobTable
from joblet.jobs.victims import Running, choose_victims, slots_needed

log = logging.getLogger(__name__)


class Preemptor:
    def __init__(
        self,
        config: DaemonConfig,
        table: JobTable,
        ending: JobEnding,
        *,
        confirm: Callable[[str], Awaitable[None]],
        volumes: JobVolumes | None = None,
    ) -> None:
        self._config = config
        self._table = table
        self._ending = ending
        self._confirm = confirm
        self._volumes = volumes

    def victims_for(self, job: Job, queued_at: float) -> tuple[str, ...]:
        """The running jobs to stop so that `job` (about to be queued) can start."""
        jobs = self._config.jobs
        if not jobs.preemption or jobs.max_concurrent_jobs <= 0:
            return ()
        registry = self._table.registry
        running = [
            Running(j.id, j.spec.priority, j.spec.preemptible, j.started_at, bool(j.preempted_for))
            for j in registry.running()
        ]
        takeable = sum(
            1 for r in running if r.preemptible and not r.leaving and r.priority < job.spec.priority
        )
        if not takeable:
            return ()  # the usual case: nothing to take, and no need to look further
        waiting = Waiting(job.id, job.spec.priority, queued_at, job.created_at)
        needed = slots_needed(
            registry.running_count(),
            sum(1 for r in running if r.leaving),
            jobs.max_concurrent_jobs,
            # More jobs ahead than could be made room for: no need to count them all.
            registry.count_ahead(waiting, at_most=takeable + 1),
        )
        return choose_victims(job.spec.priority, running, needed, self.blocker(job))

    def blocker(self, job: Job) -> str:
        """Why `job` could not start even with a free slot ("" if it could)."""
        spec = job.spec
        if spec.gpu_count:
            return "it asks for GPUs, which preemption does not free"
        rt = self._table.runtime.get(job.id)
        if spec.runtime and (rt is None or rt.runtime_mount is None):
            return f"its runtime {spec.runtime} is not available"
        if spec.volumes and self._volumes is not None:
            try:
                self._volumes.resolve_for_job(spec.volumes)
            except JobletError as exc:
                return str(exc)
        return ""

    def preempt(self, victims: tuple[str, ...], for_job: str) -> None:
        """Mark each victim as leaving now (so the next decision sees it), then
        stop them in the background."""
        for victim in victims:
            self._table.apply(victim, Preempting(for_job=for_job))
            log.info("job %s: preempted by job %s", victim, for_job)
            self._table.spawn(self._stop(victim))

    async def _stop(self, job_id: str) -> None:
        # Recorded before the signal: a restart then settles it as preempted.
        await self._confirm(job_id)
        job = self._table.registry.get(job_id)
        if job.status is not JobStatus.RUNNING:
            return
        grace = job.spec.stop_grace_s
        await self._ending.terminate(job_id, signal.SIGTERM, grace)
