"""The job manager: the async shell around the registry and the state machine.

It decides with pure code (validation, transitions, the queue) and then acts:
writes the workspace, creates the cgroup, asks the launcher to start the job,
arms schedule and timeout timers, and stops jobs. No lock is held across I/O:
everything runs on the daemon's event loop and each decision is applied to
the registry before the next await.

JobManager is the one entry point; its parts live beside it: the shared
table (table.py), starting jobs (launch.py), their end (ending.py), taking
over jobs after a restart (restart.py) and the job directory (workspace.py).
This module keeps the commands, the schedule and the queue. The queue
(joblet.jobs.priority) is ordered by effective priority, then submission
time; preemption (joblet.jobs.preemption) lets a job that would wait take
the slots of preemptible jobs of lower priority.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from pathlib import Path

from joblet.config.model import DaemonConfig
from joblet.errors import (
    AlreadyExists,
    FailedPrecondition,
    JobletError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from joblet.gpu.allocator import GpuAllocator, wants_gpus
from joblet.isolation.spec import JobExit
from joblet.jobs import host_limits, runtime_jobs, stdin_feed, workspace
from joblet.jobs.ending import JobEnding
from joblet.jobs.ids import is_job_id, new_job_id
from joblet.jobs.launch import RECORD_WAIT_S, JobStarter
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.ports import (
    JobListener,
    JobMetrics,
    JobNetworks,
    JobVolumes,
    Launcher,
)
from joblet.jobs.preemption import Preemptor
from joblet.jobs.restart import JobRestorer
from joblet.jobs.state_machine import (
    Canceled,
    IllegalTransition,
    LaunchFailed,
    Overruled,
    Queued,
    Released,
    Scheduled,
)
from joblet.jobs.table import JobRuntime, JobTable
from joblet.jobs.users import check_run_as
from joblet.jobs.workspace import LOG_FILE
from joblet.logs.filters import LogFilter
from joblet.logs.reader import ChunkHead
from joblet.logs.service import JobLogs
from joblet.resources.cleanup import clear_job_group
from joblet.resources.interface import CgroupManager
from joblet.retention.collected import CollectedIds, JobCollected
from joblet.runtimes.seams import BuildPlan, RuntimeResolver
from joblet.workspaces.store import WorkspaceStore, plain_store

SHUTDOWN_SETTLE_S = 10.0
REMOVAL_PAUSE = 1.0  # collected jobs' directories: idle as long as removing took
SHUTDOWN_STOPPER = "daemon shutdown"  # endReason: "stopped by daemon shutdown"
FINAL_POLL_S = 0.5
STARTING_WAIT_S = 30.0  # a stop waits this long at most for a job's launch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deletion:
    """What deleting finished jobs did: how many went, how many were left
    because they still run or wait, and what could not be removed (one line
    each, naming the job)."""

    deleted: int = 0
    skipped: int = 0
    failures: tuple[str, ...] = ()


class JobManager:
    def __init__(
        self,
        config: DaemonConfig,
        cgroups: CgroupManager,
        launcher: Launcher,
        logs: JobLogs,
        node_id: str,
        *,
        listener: JobListener | None = None,
        metrics: JobMetrics | None = None,
        networks: JobNetworks | None = None,
        volumes: JobVolumes | None = None,
        workspaces: WorkspaceStore | None = None,
        runtimes: RuntimeResolver | None = None,
        clock: Callable[[], float] = time.time,
        gpus: GpuAllocator | None = None,
    ) -> None:
        self._closing = False  # shutting down: start nothing new
        self.gpus = gpus
        self._config = config
        self._cgroups = cgroups
        self._pid_limits: host_limits.PidLimits | None = None  # read at the first job
        self._workspaces = workspaces or plain_store(config.layout)
        self._networks = networks
        self._logs = logs
        self._node_id = node_id
        self._clock = clock
        self._runtimes = runtimes
        # What collected jobs left behind (set by the daemon with retention on).
        self.collected: CollectedIds | None = None
        self._table = JobTable(listener, config.jobs.priority_aging_s)
        self._kicked = False  # a start of queued jobs is due at the next loop turn
        self._restoring = False
        # Shorthands for the table's parts; they are never rebound.
        self._registry = self._table.registry
        self._runtime = self._table.runtime
        self._ending = JobEnding(
            self._table,
            logs,
            config.jobs.stop_grace_s,
            on_slot_free=self._start_queued,
            metrics=metrics,
            networks=networks,
            launcher=launcher,
            runtimes=runtimes,
            max_requeues=config.jobs.max_requeues,
            release_gpus=self._release_gpus,
        )
        self._preemptor = Preemptor(
            config, self._table, self._ending, confirm=self.confirm_recorded, volumes=volumes
        )
        self._starter = JobStarter(
            config,
            self._table,
            cgroups,
            launcher,
            logs,
            ending=self._ending,
            clock=clock,
            metrics=metrics,
            networks=networks,
            volumes=volumes,
            workspaces=self._workspaces,
            gpus=gpus,
            on_started=self._preempt_for_waiting,
        )
        self._restorer = JobRestorer(
            config,
            self._table,
            cgroups,
            logs,
            self._ending,
            clock=clock,
            limits=self._starter.limits,
            arm_schedule=self._arm_schedule,
            metrics=metrics,
            runtimes=runtimes,
            gpus=gpus,
        )

    # ---- queries -------------------------------------------------------

    def get(self, prefix: str) -> Job:
        try:
            return self._registry.resolve(prefix)
        except NotFound:
            gone = self.collected.lookup(prefix) if self.collected is not None else None
            if gone is None:
                raise
            raise JobCollected(gone) from None

    def history_id(self, prefix: str) -> str:
        """The id whose history (logs, metrics) a caller asks for: a job's, or a
        collected job's (persist keeps its history after it is gone here)."""
        try:
            return self.get(prefix).id
        except JobCollected as collected:
            return collected.gone.job_id

    def history_ref(self, prefix: str) -> tuple[str, bool]:
        """`history_id`, and whether the job is archived: a full id this node
        does not know names a job whose history may be in an archive other
        nodes write to (persist.backend s3); it is read from there."""
        try:
            return self.history_id(prefix), False
        except NotFound:
            if not is_job_id(prefix):
                raise
            return prefix, True

    def free_slots(self) -> int:
        """Jobs this node may still start now; -1 when it has no limit."""
        limit = self._config.jobs.max_concurrent_jobs
        return max(limit - self._registry.running_count(), 0) if limit > 0 else -1

    def list_jobs(self) -> list[Job]:
        return self._registry.all()

    def find(self, job_id: str) -> Job | None:
        """The job with this full id, if the node has it."""
        return self._registry.find(job_id)

    def snapshot(self) -> list[Job]:
        """Every job, in no order (cheaper than list_jobs for a sweep)."""
        return self._registry.values()

    def run_as(self, spec: JobSpec) -> tuple[int, int]:
        """The (uid, gid) a job runs as: its own choice, else the node's default."""
        return workspace.run_as(self._config.jobs, spec)

    def log_path(self, job_id: str) -> Path:
        return workspace.log_path(self._config.layout, job_id)

    async def read_logs(
        self, job_id: str, log_filter: LogFilter, head: ChunkHead | None = None
    ) -> AsyncIterator[bytes]:
        rt = self._runtime.get(job_id)
        job = self._registry.find(job_id)  # None: collected, its history in persist
        if rt is not None and job is not None and job.status.is_waiting and log_filter.follow:
            await rt.log_ready.wait()  # a scheduled or queued job has no output yet
        async for chunk in self._logs.read(job_id, log_filter, head):
            yield chunk

    def read_archived_logs(
        self, job_id: str, log_filter: LogFilter, head: ChunkHead | None = None
    ) -> AsyncIterator[bytes]:
        """The log of a job this node does not know, from persist's history
        (an archive other nodes write to); NotFound when it has none."""
        return self._logs.read_history(job_id, log_filter, head, missing_ok=False)

    # ---- commands ------------------------------------------------------

    async def submit(
        self, spec: JobSpec, scheduled_at: float = 0.0, *, pending: bool = False,
        job_id: str = "",
    ) -> Job:  # fmt: skip
        """Accept a validated job: write its workspace, then start, queue or
        schedule it; a `pending` one waits (PENDING) until `release`.
        `job_id`: the id the cluster gave a placed job (else a new one)."""
        # Its record (and soon its files) need room: refuse it now, clearly,
        # rather than accept a job whose state cannot be kept.
        check_run_as(self._config.jobs, self.run_as(spec))
        self._check_gpus(spec)
        self._check_name_free(spec)
        workspace.check_room(self._config.layout, spec)
        self._check_pids()
        if job_id and self._registry.find(job_id) is not None:
            raise AlreadyExists(f"job {job_id} exists on this node already")
        job_id = job_id or new_job_id()
        # Before anything is made: an unknown runtime leaves no trace.
        mount = runtime_jobs.acquire(self._runtimes, spec, job_id)
        created_at = self._clock()
        names: tuple[str, ...] = ()
        if spec.uploads:  # written now, so bad uploads fail the call and leave nothing
            try:
                names = await asyncio.to_thread(
                    workspace.prepare_job_dir,
                    self._config.layout,
                    self._config.jobs,
                    job_id,
                    spec,
                    self._workspaces,
                )
            except BaseException:
                if mount is not None:
                    runtime_jobs.release(self._runtimes, job_id)
                raise
        try:
            self._check_name_free(spec)  # again: another call may have taken it meanwhile
        except AlreadyExists:
            if mount is not None:
                runtime_jobs.release(self._runtimes, job_id)
            if spec.uploads:
                await self._remove_dir(job_id)
            raise
        # The bytes are on disk now: the record keeps their names only, so a
        # job's uploads cost the daemon no memory for the rest of its life.
        spec = replace(spec, uploads=())
        job = Job(
            id=job_id,
            spec=spec,
            status=JobStatus.PENDING if pending else JobStatus.INITIALIZING,
            node_id=self._node_id,
            created_at=created_at,
            upload_names=names,
            run_as=self.run_as(spec),
            runtime_name=mount.name if mount else "",
            runtime_build=mount.build_id if mount else "",
        )
        rt = JobRuntime(runtime_mount=mount)
        return await self._accept(job, rt, scheduled_at, pending=pending)

    def _check_pids(self) -> None:
        """RESOURCE_EXHAUSTED while the host is short of process ids."""
        min_free = self._config.jobs.min_free_pids
        if not min_free:
            return
        if self._pid_limits is None:
            self._pid_limits = host_limits.read_pid_limits()
        host_limits.check_pids(self._pid_limits, min_free)

    async def submit_build(self, plan: BuildPlan) -> Job:
        """Start a runtime build: a job of its own (`runtime-build:NAME`) in the
        build sandbox (see isolation.runtime_root), ended FAILED "timeout"
        after plan.timeout_s. Its output is its log."""
        spec = runtime_jobs.build_spec(plan)
        runtime_jobs.check_build_isolation(self._config)
        job = Job(
            id=new_job_id(),
            spec=spec,
            status=JobStatus.INITIALIZING,
            node_id=self._node_id,
            created_at=self._clock(),
            run_as=(0, 0),
        )
        return await self._accept(job, JobRuntime(build=plan, timeout_s=plan.timeout_s))

    async def wait_final(self, job_id: str) -> Job:
        """The job once it has reached a final status (as deleted if it is deleted meanwhile)."""
        while True:
            job = self._registry.get(job_id)
            rt = self._runtime.get(job_id)
            if job.status.is_final or rt is None:
                return job
            # `exited` covers the usual end; a launch failure or a cancel sets
            # no event, so the status is looked at again now and then.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.exited.wait(), FINAL_POLL_S)

    async def _accept(
        self, job: Job, rt: JobRuntime, scheduled_at: float = 0.0, *, pending: bool = False
    ) -> Job:
        job_id = job.id
        self._registry.add(job)
        self._runtime[job_id] = rt
        if pending:
            self._table.changed(job)
            return job
        return await self._go(job, scheduled_at)

    async def release(self, job_id: str) -> Job:
        """A pending job's requirements hold: start, queue or schedule it now."""
        job = self._registry.get(job_id)
        if self._closing:
            return job  # still PENDING in the store: the next start takes it up
        job = self._table.apply(job_id, Released())
        # Jobs released together (dependents of one job) start best first.
        return await self._go(job, 0.0, recorded=True, together=True)

    def cancel_pending(self, job_id: str, by: str, reason: str = "") -> Job:
        """End a pending job that will never run (a requirement can no longer hold)."""
        return self._cancel(job_id, by, reason)

    def fail_pending(self, job_id: str, reason: str) -> Job:
        """A pending job that cannot be started (its runtime removed, say): FAILED."""
        job = self._table.apply(job_id, LaunchFailed(reason=reason, at=self._clock()))
        self._ending.release(job_id)
        return job

    async def _go(
        self, job: Job, scheduled_at: float, *, recorded: bool = False, together: bool = False
    ) -> Job:
        """Start, queue or schedule a job. `together`: it may become ready with
        others in this loop turn, so it goes through the queue, in order."""
        job_id = job.id
        limit = self._config.jobs.max_concurrent_jobs
        if scheduled_at:
            job = self._table.apply(job_id, Scheduled(at=scheduled_at))
            self._arm_schedule(job_id, scheduled_at)
        elif self._registry.has_slot(limit) and (limit <= 0 or not (together or self._queued())):
            if not recorded:  # recorded before the launch, so a crash cannot orphan it
                self._table.changed(job)
            return await self._starter.start(job_id)
        else:
            job = self._wait_for_slot(job_id)
        # A waiting job is answered once it is stored: a daemon killed right
        # after the answer still knows the job it accepted.
        await self.confirm_recorded(job_id)
        return job

    async def confirm_recorded(self, what: str) -> None:
        """Wait until every change told so far is stored (a caller about to
        answer for `what`); after RECORD_WAIT_S, log it and go on."""
        if not await self._table.recorded(RECORD_WAIT_S):
            log.warning("%s: the state helper did not confirm its record within %gs",
                        what, RECORD_WAIT_S)  # fmt: skip

    async def feed_stdin(self, prefix: str, chunks: AsyncIterator[bytes]) -> int:
        """Stream `chunks` into the job's fd 0, then close it (EOF); bytes written."""
        job = self._registry.resolve(prefix)
        if not job.spec.stdin:
            raise FailedPrecondition(f"job {job.id} was not started with stdin (rnx run -i)")
        rt = self._runtime.get(job.id)
        if rt is None or job.status.is_final:
            raise FailedPrecondition(f"job {job.id} is {job.status}: its stdin is closed")
        await rt.log_ready.wait()  # started (or ended) once a waiting job's turn came
        if rt.stdin_fd < 0:
            raise FailedPrecondition(f"job {job.id}: its stdin is closed")
        # Our own descriptor: the job's end closes the runtime's meanwhile.
        fd = os.dup(rt.stdin_fd)
        try:
            return await stdin_feed.feed(fd, chunks, lambda: rt.stdin_fd < 0)
        finally:
            os.close(fd)
            rt.close_stdin()

    def _check_gpus(self, spec: JobSpec) -> None:
        """A GPU request the node can never meet fails now, naming what exists."""
        if not wants_gpus(spec):
            return
        if self.gpus is None:
            raise ResourceExhausted("the job asks for GPUs; this node has no GPUs")
        self.gpus.check(spec)

    def _release_gpus(self, job_id: str) -> None:
        """The job's cgroup is gone: its GPUs go to the GPU jobs waiting, in order."""
        if self.gpus is None or not self.gpus.release(job_id):
            return
        live = [j.id for j in self._registry.values() if not j.status.is_final]
        for breach in self.gpus.breaches(live):
            log.error("GPU allocation: %s", breach)
        if self._closing:
            return
        for ready in self.gpus.ready():
            self._table.spawn(self._start_with_gpus(ready))

    async def _start_with_gpus(self, job_id: str) -> None:
        """A GPU job whose GPUs are now held for it: start it when a slot is
        free, else it waits for one (keeping its GPUs, it is next in line)."""
        job = self._registry.find(job_id)
        if job is None or job.status is not JobStatus.QUEUED:
            self._release_gpus(job_id)
            return
        if self._registry.has_slot(self._config.jobs.max_concurrent_jobs):
            await self._starter.start(job_id)
        else:
            self._registry.enqueue(job_id)
            self._kick()

    def _check_name_free(self, spec: JobSpec) -> None:
        """With joblet.uniqueJobNames, a name no other (undeleted) job has."""
        if not (spec.name and self._config.jobs.unique_job_names):
            return
        taken = self._registry.named(spec.name)
        if taken:
            raise AlreadyExists(
                f"a job named {spec.name!r} exists ({taken[0]}): names are unique on this"
                " node (joblet.uniqueJobNames); delete it or choose another name"
            )

    async def stop(
        self,
        prefix: str,
        caller: str,
        signum: int = signal.SIGTERM,
        grace_s: float | None = None,
    ) -> Job:
        """`signum`, a grace period (the node's unless `grace_s`), then kill.
        A job still waiting to start is canceled instead."""
        job = self._registry.resolve(prefix)
        if job.status is JobStatus.INITIALIZING:
            job = await self._past_initializing(job.id)
        if job.status.is_waiting:
            return self._cancel(job.id, caller)
        self._check_running(job)
        rt = self._runtime[job.id]
        if not rt.stopped_by and not rt.timed_out:
            rt.stopped_by = caller
        await self._ending.terminate(job.id, signum, grace_s)
        return self._registry.get(job.id)

    async def end_earlier_run(self, job_id: str, caller: str, timeout: float) -> None:
        """Before a job runs again here under its id (a placed job the
        cluster queued again): its earlier run here ends first, killed if it
        still runs, and its cgroup is gone, then its record is deleted. Two
        runs never overlap, and each end is the run's own. A run this daemon
        has no record of (its record was lost with a crash before the state
        helper stored it) may still have left processes, a cgroup and a
        directory here: they go too."""
        job = self._registry.find(job_id)
        if job is None:
            await asyncio.to_thread(self._clear_unrecorded_run, job_id)
            await self._remove_dir(job_id)
        else:
            async with asyncio.timeout(timeout):
                if not job.status.is_final:
                    with contextlib.suppress(JobletError):
                        await self.stop(job_id, caller, signal.SIGKILL, 0.0)
                    await self.wait_final(job_id)
                rt = self._runtime.get(job_id)
                if rt is not None and rt.cleanup is not None:
                    await asyncio.shield(rt.cleanup)
            with contextlib.suppress(NotFound):  # deleted meanwhile
                await self.delete(job_id)
        if self._networks is not None:
            try:
                await asyncio.to_thread(self._networks.drop_links_of, job_id)
            except OSError as exc:  # its launch then says what is in the way
                log.warning("job %s: its earlier run's veth not removed: %s", job_id, exc)

    def _clear_unrecorded_run(self, job_id: str) -> None:
        if clear_job_group(self._cgroups, job_id):
            log.warning("job %s: an earlier run here without a record left a cgroup: its"
                        " processes were killed and the group removed", job_id)  # fmt: skip

    async def _past_initializing(self, job_id: str) -> Job:
        """A job being set up (or launched) has no state a stop can act on:
        wait the moment until it runs, waits or has ended."""
        deadline = time.monotonic() + STARTING_WAIT_S
        while (job := self._registry.get(job_id)).status is JobStatus.INITIALIZING:
            if time.monotonic() > deadline:
                raise Unavailable(f"job {job_id} is still starting; try again")
            await asyncio.sleep(0.01)
        return job

    async def overrule_lost(self, job_id: str, reason: str) -> None:
        """The cluster holds this placed job lost with this node (its lease
        lapsed): a copy still running here is killed and ends FAILED for
        `reason`; an end recorded here meanwhile becomes that, its exit code
        and end time kept."""
        job = self._registry.find(job_id)
        if job is None:
            return
        if job.status is JobStatus.INITIALIZING:  # a cancel cannot apply to it yet
            job = await self._past_initializing(job_id)
        if job.status is JobStatus.RUNNING:
            self._runtime[job.id].lost_reason = reason
            await self._ending.terminate(job.id, signal.SIGKILL, 0.0)
        elif job.status.is_waiting:
            self._cancel(job.id, "the cluster", reason)
        elif job.status.is_final and job.end_reason != reason:
            self._table.apply(job.id, Overruled(reason))

    async def send_signal(self, prefix: str, signum: int) -> Job:
        """`signum` to a running job's command; it may go on running."""
        job = self._registry.resolve(prefix)
        self._check_running(job)
        await self._ending.send_signal(job.id, signum)
        return self._registry.get(job.id)

    @staticmethod
    def _check_running(job: Job) -> None:
        if job.status is not JobStatus.RUNNING:
            raise FailedPrecondition(f"job {job.id} is {job.status}: it is not running")

    async def cancel(self, prefix: str, caller: str) -> Job:
        job = self._registry.resolve(prefix)
        if job.status not in (JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.QUEUED):
            raise FailedPrecondition(
                f"job {job.id} is {job.status}: only pending, scheduled or queued jobs "
                "can be canceled"
            )
        return self._cancel(job.id, caller)

    async def delete(self, prefix: str) -> tuple[Job, Deletion]:
        """Delete a finished job: its record, log and directory. The job is
        gone even when part of its directory could not be removed; that part
        is reported."""
        job = self._registry.resolve(prefix)
        if not job.status.is_final:
            raise FailedPrecondition(
                f"job {job.id} is {job.status}: stop or cancel it before deleting it"
            )
        self._forget(job.id)
        return job, Deletion(deleted=1, failures=tuple(await self._remove_dir(job.id)))

    async def delete_all(self, keep: Callable[[str], bool] | None = None) -> Deletion:
        """Delete every finished job but those `keep` names (jobs of unfinished
        workflows); one that fails does not stop the others."""
        skipped = 0
        forgotten: list[str] = []
        failures: list[str] = []
        for job in self._registry.all():
            if not job.status.is_final or (keep is not None and keep(job.id)):
                skipped += 1
                continue
            try:
                self._forget(job.id)
            except Exception as exc:  # one job's trouble must not keep the rest
                log.exception("deleting job %s failed", job.id)
                failures.append(f"job {job.id}: {exc}")
                continue
            forgotten.append(job.id)
        for job_id in forgotten:
            failures += await self._remove_dir(job_id)
        return Deletion(len(forgotten), skipped, tuple(failures))

    async def shutdown(self, *, stop_jobs: bool = True) -> None:
        """Daemon shutdown: start nothing more and, with `stop_jobs`, stop every
        running job. Without, running jobs are left as they are (the launcher
        keeps them; the next start re-attaches them and re-arms their
        timeouts). Scheduled and queued jobs stay as they are in the state
        store and are taken up again at the next start."""
        self._closing = True
        for rt in self._runtime.values():
            rt.cancel_timers()
        if stop_jobs:
            running = [j.id for j in self._registry.all() if j.status is JobStatus.RUNNING]
            for job_id in running:
                rt = self._runtime[job_id]
                rt.stopped_by = rt.stopped_by or SHUTDOWN_STOPPER
            stops = (self._ending.terminate(job_id) for job_id in running)
            await asyncio.gather(*stops, return_exceptions=True)
        # Let cgroup removals (and final samples) finish: a cgroup left behind
        # would only be cleaned at the next start.
        tasks = self._table.tasks
        if tasks:
            await asyncio.wait(list(tasks), timeout=SHUTDOWN_SETTLE_S)
        for task in list(tasks):
            task.cancel()

    # ---- restart and launcher events -----------------------------------

    def restore(
        self,
        jobs: list[Job],
        running: dict[str, int],
        orphaned: AbstractSet[str] = frozenset(),
        launches_known: bool = False,
    ) -> None:
        """Take over the jobs a previous daemon left (from the state store);
        `launches_known`: see recovery.decide."""
        # Nothing starts before every job is back: a job requeued on the way
        # must not take a slot ahead of a better one restored after it.
        self._restoring = True
        try:
            self._restorer.restore(jobs, running, orphaned, launches_known)
        finally:
            self._restoring = False
        self._start_queued()

    def on_exit(self, event: JobExit) -> None:
        """Called by the launcher client when a job's init has ended."""
        self._ending.on_exit(event)

    def on_launcher_back(self, running: dict[str, int], adopted: AbstractSet[str]) -> None:
        """Called once a launcher answers again after the connection broke."""
        self._restorer.after_launcher_loss(running, adopted)

    # ---- schedule and queue --------------------------------------------

    def _arm_schedule(self, job_id: str, at: float) -> None:
        delay = max(0.0, at - self._clock())
        self._runtime[job_id].call_later(
            delay, lambda: self._table.spawn(self._scheduled_due(job_id))
        )

    async def _scheduled_due(self, job_id: str) -> None:
        try:
            job = self._registry.get(job_id)
        except KeyError:
            return
        if job.status is not JobStatus.SCHEDULED:
            return
        if self._config.jobs.max_concurrent_jobs <= 0:
            await self._starter.start(job_id)
        else:  # schedules falling due together start best first
            self._wait_for_slot(job_id)

    def _queued(self) -> bool:
        return bool(self._registry.queued_count())

    def _wait_for_slot(self, job_id: str) -> Job:
        """Queue a job (in priority order), take the slots of lower preemptible
        jobs if it may, and start the best queued jobs at the next loop turn."""
        job = self._registry.get(job_id)
        now = self._clock()
        limit = self._config.jobs.max_concurrent_jobs
        victims = self._preemptor.victims_for(job, now)
        if victims:
            reason = f"preempting {', '.join(victims)}"
        elif self._registry.has_slot(limit):
            reason = ""  # ready with others: it waits a loop turn at most
        else:
            running = self._registry.running_count()
            reason = f"{running} jobs running, joblet.maxConcurrentJobs is {limit}"
        job = self._table.apply(job_id, Queued(at=now, reason=reason))
        self._registry.enqueue(job_id)
        self._preemptor.preempt(victims, job_id)
        if victims:  # its directory is made during their grace period, not after it
            self._runtime[job_id].settling = self._table.spawn_task(self._prepare_dir(job))
        self._kick()
        return job

    def _preempt_for_waiting(self, started: Job) -> None:
        """A preemptible job that was still starting when a better job was
        queued was no victim then; now that it runs, the best waiting job may
        take its slot (else that job would wait for its end)."""
        if not (self._config.jobs.preemption and started.spec.preemptible):
            return
        best = self._registry.first_queued()
        if best is None:
            return
        job = self._registry.get(best)
        victims = self._preemptor.victims_for(job, job.queued_at)
        if victims:
            self._preemptor.preempt(victims, best)

    async def _prepare_dir(self, job: Job) -> None:
        layout = self._config.layout
        if workspace.log_path(layout, job.id).exists():
            return
        try:
            await asyncio.to_thread(
                workspace.prepare_job_dir, layout, self._config.jobs, job.id,
                replace(job.spec, uploads=()), self._workspaces,
            )  # fmt: skip
        except (OSError, JobletError) as exc:  # its start makes it, or says why not
            log.warning("job %s: preparing its directory early: %s", job.id, exc)

    def _kick(self) -> None:
        """Start queued jobs at the next loop turn, once for all the jobs
        queued in this one (so the best of them goes first)."""
        if not self._kicked:
            self._kicked = True
            asyncio.get_running_loop().call_soon(self._kicked_start)

    def _kicked_start(self) -> None:
        self._kicked = False
        self._start_queued()

    def _start_queued(self) -> None:
        if self._closing or self._restoring:
            return
        limit = self._config.jobs.max_concurrent_jobs
        while (job_id := self._registry.next_queued(limit)) is not None:
            self._registry.starting += 1  # reserve the slot until the start runs
            self._table.spawn(self._start_reserved(job_id))

    async def _start_reserved(self, job_id: str) -> None:
        rt = self._runtime.get(job_id)
        if rt is not None and rt.settling is not None:
            # A requeued job: its last run's cgroup must be gone first.
            with contextlib.suppress(Exception):
                await asyncio.shield(rt.settling)
            rt.settling = None
        self._registry.starting -= 1
        try:
            job = self._registry.get(job_id)
        except KeyError:
            return
        if job.status is JobStatus.QUEUED:
            await self._starter.start(job_id)

    # ---- waiting and final jobs ----------------------------------------

    def _cancel(self, job_id: str, caller: str, reason: str = "") -> Job:
        job = self._table.apply(job_id, Canceled(by=caller, at=self._clock(), reason=reason))
        self._ending.release(job_id)
        return job

    def collect(self, job_id: str) -> Job | None:
        """Forget a finished job whose log has reached persist, keeping its
        history there; None if it is gone or not collectable (any more)."""
        job = self._registry.find(job_id)
        if job is None or not job.status.is_final or self._logs.copying(job_id):
            return None
        self._forget(job_id, keep_history=True)
        return job

    def log_copying(self, job_id: str) -> bool:
        return self._logs.copying(job_id)

    async def remove_dirs(self, job_ids: list[str]) -> list[str]:
        """Remove collected jobs' directories, in one thread; what was left."""

        def remove_all() -> list[str]:
            failures: list[str] = []
            for job_id in job_ids:
                began = time.monotonic()
                failures += remove_one(job_id)
                # Paced: this thread holds the GIL for much of its work, and
                # every call the event loop serves meanwhile waits for it.
                time.sleep((time.monotonic() - began) * REMOVAL_PAUSE)
            return failures

        def remove_one(job_id: str) -> list[str]:
            try:
                left = workspace.remove_job_dir(self._config.layout, job_id, self._workspaces)
            except OSError as exc:
                return [f"job {job_id}: {exc}"]
            return [f"job {job_id}: could not remove {failure}" for failure in left]

        return await asyncio.to_thread(remove_all)

    async def settle(self) -> bool:
        """Wait until the state store has every change so far (a batch of
        deletions must not queue ahead of the next RunJob's record)."""
        return await self._table.recorded(RECORD_WAIT_S)

    def _forget(self, job_id: str, *, keep_history: bool = False) -> None:
        """Everything of a deleted job but its directory."""
        self._registry.remove(job_id)
        runtime_jobs.release(self._runtimes, job_id)
        if self._table.listener is not None:
            self._table.listener.deleted(job_id)
        rt = self._runtime.pop(job_id, None)
        if rt is not None:
            rt.cancel_timers()
        if keep_history:
            self._logs.drop_local(job_id)
        else:
            self._logs.delete(job_id)

    async def _remove_dir(self, job_id: str) -> list[str]:
        """Remove the job's directory in a thread: a job may have left
        millions of files, and the event loop serves every other call
        meanwhile. What could not be removed, one line each."""
        try:
            left = await asyncio.to_thread(
                workspace.remove_job_dir, self._config.layout, job_id, self._workspaces
            )
        except Exception as exc:
            log.exception("removing the directory of job %s failed", job_id)
            return [f"job {job_id}: {exc}"]
        for failure in left:
            log.warning("job %s: could not remove %s", job_id, failure)
        return [f"job {job_id}: could not remove {failure}" for failure in left]


__all__ = ["LOG_FILE", "Deletion", "IllegalTransition", "JobManager", "Launcher"]
