"""Taking over, at start-up, the jobs a previous daemon left in the state
store: what to do with each is decided by joblet.jobs.recovery; this module
carries it out (re-arm, re-queue, re-attach, or settle the job)."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path

from joblet.config.model import DaemonConfig
from joblet.gpu.allocator import GpuAllocator
from joblet.isolation.records import read_exit
from joblet.jobs import recovery, runtime_jobs
from joblet.jobs.ending import JobEnding
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.ports import JobMetrics
from joblet.jobs.state_machine import Exited, LaunchFailed, Queued, Started
from joblet.jobs.table import JobRuntime, JobTable
from joblet.jobs.workspace import LOG_FILE
from joblet.logs.service import JobLogs
from joblet.resources.interface import CgroupManager, Limits
from joblet.runtimes.seams import RuntimeResolver

log = logging.getLogger(__name__)

BUILD_NOT_RUN = "the daemon restarted before the build ran"
RELAUNCH_REASON = "the daemon restarted while it was starting; it had not run"
BUILD_STOPPER = "the daemon's restart"  # "stopped by the daemon's restart"


class JobRestorer:
    """Adds restored jobs to the table and brings each back to life or to an end.

    `limits` gives a job's cgroup limits (for the metrics of re-attached jobs);
    `arm_schedule` re-arms the timer of a scheduled job.
    """

    def __init__(
        self,
        config: DaemonConfig,
        table: JobTable,
        cgroups: CgroupManager,
        logs: JobLogs,
        ending: JobEnding,
        *,
        clock: Callable[[], float],
        limits: Callable[[JobSpec], Limits],
        arm_schedule: Callable[[str, float], None],
        metrics: JobMetrics | None = None,
        runtimes: RuntimeResolver | None = None,
        gpus: GpuAllocator | None = None,
    ) -> None:
        self._gpus = gpus
        self._runtimes = runtimes
        self._config = config
        self._table = table
        self._cgroups = cgroups
        self._logs = logs
        self._ending = ending
        self._clock = clock
        self._limits = limits
        self._arm_schedule = arm_schedule
        self._metrics = metrics
        self._reattached = 0  # in the restore under way
        self._jobs_dir = str(config.layout.jobs)

    def restore(
        self,
        jobs: list[Job],
        running: dict[str, int],
        orphaned: AbstractSet[str] = frozenset(),
        launches_known: bool = False,
    ) -> None:
        """Take over the jobs a previous daemon left (from the state store);
        `launches_known`: see recovery.decide."""
        layout = self._config.layout
        # One listing instead of per-job lookups: most waiting jobs have no
        # directory yet, and a restart may load tens of thousands of jobs.
        with os.scandir(layout.jobs) as entries:
            with_dirs = {entry.name for entry in entries}
        # Paths as strings: building a Path per job cost more than the stat it names.
        jobs_dir = self._jobs_dir = str(layout.jobs)
        self._reattached = 0
        for job in sorted(jobs, key=lambda j: (j.created_at, j.id)):
            if job.id in self._table.runtime:
                continue
            self._table.registry.add(job)
            self._table.runtime[job.id] = JobRuntime()
            if (not job.status.is_final or job.requeue_due) and job.runtime_build:
                self._table.runtime[job.id].runtime_mount = runtime_jobs.reacquire(
                    self._runtimes, job.runtime_name, job.runtime_build, job.id
                )
            has_dir = job.id in with_dirs
            exit_record = read_exit(f"{jobs_dir}/{job.id}") if has_dir else None
            action = recovery.decide(
                job, running.get(job.id), exit_record, job.id in orphaned, launches_known
            )
            self._recover(job, action, has_dir)
            if runtime_jobs.is_build(job.spec):
                self._end_build(job.id)
        if self._reattached:
            log.info("re-attached to %d running job(s)", self._reattached)

    def after_launcher_loss(self, running: dict[str, int], adopted: AbstractSet[str]) -> None:
        """The connection to the launcher broke and a launcher answers again
        (the same one, or a new one if it died): follow on what it still runs,
        record the exits it wrote meanwhile, settle the rest as lost."""
        layout = self._config.layout
        for job in self._table.registry.all():
            if job.status is not JobStatus.RUNNING:
                continue  # a launch in flight failed with the connection
            exit_record = read_exit(str(layout.job_dir(job.id)))
            action = recovery.after_launcher_loss(
                running.get(job.id), job.id in adopted, exit_record
            )
            match action:
                case recovery.Reattach():
                    log.info("job %s still runs under the launcher", job.id)
                case recovery.Ended(exit=exit_record):
                    self._ending.on_exit(exit_record)
                case recovery.Lost(reason=reason):
                    self._table.spawn(self._ending.settle_lost(job.id, reason))

    def _recover(self, job: Job, action: recovery.Recovery, has_dir: bool = True) -> None:
        job_id = job.id
        if has_dir:
            self._track_logs(job_id, finished=isinstance(action, recovery.Keep | recovery.Lost))
        rt = self._table.runtime[job_id]
        self._restore_gpus(job, action)
        match action:
            case recovery.Wait():
                pass  # taken up by its workflow once the daemon is ready
            case recovery.Rearm():
                self._arm_schedule(job_id, job.scheduled_at)
            case recovery.Requeue() if job.status is JobStatus.STOPPED:
                self._ending.requeue(job_id, notify=False)  # the manager starts jobs after
            case recovery.Requeue():
                self._table.registry.enqueue(job_id)
            case recovery.Relaunch():
                at = job.queued_at or job.created_at
                self._table.apply(job_id, Queued(at=at, reason=RELAUNCH_REASON))
                self._table.registry.enqueue(job_id)
            case recovery.Reattach(pid=pid):
                self._reattach(job, pid)
            case recovery.Ended(exit=exit_record):
                rt.cgroup = self._cgroups.open(job_id)
                if job.status is not JobStatus.RUNNING:
                    self._table.apply(job_id, Started(pid=0, at=job.created_at))
                self._ending.on_exit(exit_record)
            case recovery.Lost(reason=reason):
                rt.cgroup = self._cgroups.open(job_id)
                now = self._clock()
                if job.status is JobStatus.RUNNING:
                    self._table.apply(job_id, Exited(exit_code=-1, signal=0, at=now, lost=reason))
                else:
                    self._table.apply(job_id, LaunchFailed(reason=reason, at=now))
                self._ending.release(job_id)

    def _restore_gpus(self, job: Job, action: recovery.Recovery) -> None:
        """A job that ran holds its GPUs until its cleanup gives them back:
        the table is rebuilt from the jobs the daemon takes over."""
        ran = isinstance(action, recovery.Reattach | recovery.Ended | recovery.Lost)
        if self._gpus is not None and ran:
            self._gpus.restore(job.id, job.gpu_indices, job.spec)

    def _end_build(self, job_id: str) -> None:
        """A build the previous daemon ran or queued: its plan (and whoever
        waited for it) went with that daemon, so it is ended, never run."""
        rt = self._table.runtime[job_id]
        job = self._table.registry.get(job_id)
        if job.status.is_final:
            return
        if job.status is JobStatus.RUNNING:
            rt.stopped_by = BUILD_STOPPER
            self._table.spawn(self._ending.terminate(job_id))
            return
        rt.cancel_timers()
        self._table.apply(job_id, LaunchFailed(reason=BUILD_NOT_RUN, at=self._clock()))
        self._ending.release(job_id)

    def _track_logs(self, job_id: str, finished: bool) -> None:
        path = f"{self._jobs_dir}/{job_id}/{LOG_FILE}"
        if os.path.exists(path):
            self._logs.hub.track(job_id, Path(path), finished=finished)
            self._logs.hold_copy(job_id)  # started once the daemon serves

    def _reattach(self, job: Job, pid: int) -> None:
        if job.status is not JobStatus.RUNNING:
            # The daemon died between the launch and recording it: the launcher
            # says the job runs, so it is RUNNING (from about when it was made),
            # and its exit can be recorded when it comes.
            job = self._table.apply(job.id, Started(pid=pid, at=job.created_at))
        rt = self._table.runtime[job.id]
        rt.cgroup = self._cgroups.open(job.id)
        rt.limits = self._limits(job.spec)
        # One line per job at debug: thousands of them made a restart slower.
        log.debug("re-attached to running job %s (pid %d)", job.id, pid)
        self._reattached += 1
        if self._metrics is not None and rt.cgroup is not None:
            reader = self._gpus.reader(job.gpu_indices) if self._gpus else None
            self._metrics.start_job(
                job.id, rt.cgroup, rt.limits, init_pid=pid,
                gpu_indices=job.gpu_indices, gpu_reader=reader,
            )  # fmt: skip
        timeout = self._config.jobs.job_timeout_s
        if timeout > 0:
            left = max(0.0, job.started_at + timeout - self._clock())
            rt.call_later(left, self._ending.on_timeout, job.id)
        if job.preempted_for:  # the last daemon was stopping it for another job
            grace = job.spec.stop_grace_s
            self._table.spawn(self._ending.terminate(job.id, signal.SIGTERM, grace))
