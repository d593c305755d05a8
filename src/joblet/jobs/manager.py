"""The job manager: the async shell around the registry and the state machine.

It decides with pure code (validation, transitions, the queue) and then acts:
writes the workspace, creates the cgroup, asks the launcher to start the job,
arms schedule and timeout timers, and stops jobs. No lock is held across I/O:
everything runs on the daemon's event loop and each decision is applied to
the registry before the next await.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from joblet.config.model import DaemonConfig
from joblet.errors import FailedPrecondition, JobletError
from joblet.isolation.records import read_exit
from joblet.isolation.spec import JobExit, LaunchSpec
from joblet.jobs import recovery
from joblet.jobs.environment import job_environment
from joblet.jobs.ids import new_job_id
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.ports import (
    JobListener,
    JobMetrics,
    JobNetworks,
    JobVolumes,
    Launcher,
)
from joblet.jobs.registry import JobRegistry
from joblet.jobs.state_machine import (
    Canceled,
    Event,
    Exited,
    IllegalTransition,
    LaunchFailed,
    Queued,
    Scheduled,
    Started,
)
from joblet.jobs.uploads import write_uploads
from joblet.logs.filters import LogFilter
from joblet.logs.reader import ChunkHead
from joblet.logs.service import JobLogs
from joblet.resources.interface import CgroupManager, JobCgroup, Limits

log = logging.getLogger(__name__)

LOG_FILE = "output.log"
KILL_SETTLE_S = 10.0
SHUTDOWN_SETTLE_S = 10.0


@dataclass
class _Runtime:
    """What the manager holds for a job while it is alive (not part of the record)."""

    cgroup: JobCgroup | None = None
    limits: Limits | None = None
    early_exit: JobExit | None = None  # an exit that arrived before Started
    log_ready: asyncio.Event = field(default_factory=asyncio.Event)  # started or ended
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    stopped_by: str = ""
    timed_out: bool = False
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    # Killing and removing the cgroup run in threads; they must not overlap
    # (a removal under a running kill makes the kill fail with ENODEV).
    cgroup_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._listener = listener
        self._metrics = metrics
        self._networks = networks
        self._volumes = volumes
        self._closing = False  # shutting down: start nothing new
        self._config = config
        self._cgroups = cgroups
        self._launcher = launcher
        self._logs = logs
        self._node_id = node_id
        self._clock = clock
        self._registry = JobRegistry()
        self._runtime: dict[str, _Runtime] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- queries -------------------------------------------------------

    def get(self, prefix: str) -> Job:
        return self._registry.resolve(prefix)

    def list_jobs(self) -> list[Job]:
        return self._registry.all()

    def run_as(self, spec: JobSpec) -> tuple[int, int]:
        """The (uid, gid) a job runs as: its own choice, else the node's default."""
        if spec.run_as is not None:
            return spec.run_as
        jobs = self._config.jobs
        uid = jobs.run_as_uid or 0
        return uid, jobs.run_as_gid if jobs.run_as_gid is not None else uid

    def log_path(self, job_id: str) -> Path:
        return self._config.layout.job_dir(job_id) / LOG_FILE

    async def read_logs(
        self, job_id: str, log_filter: LogFilter, head: ChunkHead | None = None
    ) -> AsyncIterator[bytes]:
        rt = self._runtime.get(job_id)
        job = self._registry.get(job_id)
        if rt is not None and job.status.is_waiting and log_filter.follow:
            await rt.log_ready.wait()  # a scheduled or queued job has no output yet
        async for chunk in self._logs.read(job_id, log_filter, head):
            yield chunk

    # ---- commands ------------------------------------------------------

    async def submit(self, spec: JobSpec, scheduled_at: float = 0.0) -> Job:
        """Accept a validated job: write its workspace, then start, queue or schedule it."""
        job_id = new_job_id()
        created_at = self._clock()
        names: tuple[str, ...] = ()
        if spec.uploads:  # written now, so bad uploads fail the call and leave nothing
            names = await asyncio.to_thread(self._prepare_dir, job_id, spec)
        job = Job(
            id=job_id,
            spec=spec,
            status=JobStatus.INITIALIZING,
            node_id=self._node_id,
            created_at=created_at,
            upload_names=names,
            run_as=self.run_as(spec),
        )
        self._registry.add(job)
        self._runtime[job_id] = _Runtime()
        if scheduled_at:
            job = self._apply(job_id, Scheduled(at=scheduled_at))
            self._arm_schedule(job_id, scheduled_at)
        elif self._registry.has_slot(self._config.jobs.max_concurrent_jobs):
            self._changed(job)  # recorded before the launch, so a crash cannot orphan it
            job = await self._start(job_id)
        else:
            job = self._apply(job_id, Queued())
            self._registry.enqueue(job_id)
        return job

    async def stop(self, prefix: str, caller: str) -> Job:
        job = self._registry.resolve(prefix)
        if job.status.is_waiting:
            return self._cancel(job.id, caller)
        if job.status is not JobStatus.RUNNING:
            raise FailedPrecondition(f"job {job.id} is {job.status}: it is not running")
        rt = self._runtime[job.id]
        if not rt.stopped_by and not rt.timed_out:
            rt.stopped_by = caller
        await self._terminate(job.id)
        return self._registry.get(job.id)

    async def cancel(self, prefix: str, caller: str) -> Job:
        job = self._registry.resolve(prefix)
        if job.status not in (JobStatus.SCHEDULED, JobStatus.QUEUED):
            raise FailedPrecondition(
                f"job {job.id} is {job.status}: only scheduled or queued jobs can be canceled"
            )
        return self._cancel(job.id, caller)

    def delete(self, prefix: str) -> Job:
        job = self._registry.resolve(prefix)
        if not job.status.is_final:
            raise FailedPrecondition(
                f"job {job.id} is {job.status}: stop or cancel it before deleting it"
            )
        self._delete(job.id)
        return job

    def delete_all(self) -> tuple[int, int]:
        deleted = skipped = 0
        for job in self._registry.all():
            if job.status.is_final:
                self._delete(job.id)
                deleted += 1
            else:
                skipped += 1
        return deleted, skipped

    async def shutdown(self) -> None:
        """Stop every running job (daemon shutdown). Scheduled and queued jobs stay
        as they are in the state store and are taken up again at the next start."""
        self._closing = True
        for rt in self._runtime.values():
            rt.cancel_timers()
        running = [j.id for j in self._registry.all() if j.status is JobStatus.RUNNING]
        for job_id in running:
            self._runtime[job_id].stopped_by = self._runtime[job_id].stopped_by or "shutdown"
        await asyncio.gather(*(self._terminate(j) for j in running), return_exceptions=True)
        # Let cgroup removals (and final samples) finish: a cgroup left behind
        # would only be cleaned at the next start.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=SHUTDOWN_SETTLE_S)
        for task in list(self._tasks):
            task.cancel()

    # ---- restart -------------------------------------------------------

    def restore(
        self, jobs: list[Job], running: dict[str, int], orphaned: AbstractSet[str] = frozenset()
    ) -> None:
        """Take over the jobs a previous daemon left (from the state store)."""
        # One listing instead of per-job lookups: most waiting jobs have no
        # directory yet, and a restart may load tens of thousands of jobs.
        with os.scandir(self._config.layout.jobs) as entries:
            with_dirs = {entry.name for entry in entries}
        for job in sorted(jobs, key=lambda j: (j.created_at, j.id)):
            if job.id in self._runtime:
                continue
            self._registry.add(job)
            self._runtime[job.id] = _Runtime()
            has_dir = job.id in with_dirs
            exit_record = read_exit(str(self._config.layout.job_dir(job.id))) if has_dir else None
            action = recovery.decide(job, running.get(job.id), exit_record, job.id in orphaned)
            self._recover(job, action, has_dir)
        self._start_queued()

    def _recover(self, job: Job, action: recovery.Recovery, has_dir: bool = True) -> None:
        job_id = job.id
        if has_dir:
            self._track_logs(job_id, finished=isinstance(action, recovery.Keep | recovery.Lost))
        rt = self._runtime[job_id]
        match action:
            case recovery.Rearm():
                self._arm_schedule(job_id, job.scheduled_at)
            case recovery.Requeue():
                self._registry.enqueue(job_id)
            case recovery.Reattach(pid=pid):
                self._reattach(job, pid)
            case recovery.Ended(exit=exit_record):
                rt.cgroup = self._cgroups.open(job_id)
                if job.status is not JobStatus.RUNNING:
                    self._apply(job_id, Started(pid=0, at=job.created_at))
                self.on_exit(exit_record)
            case recovery.Lost(reason=reason):
                rt.cgroup = self._cgroups.open(job_id)
                now = self._clock()
                if job.status is JobStatus.RUNNING:
                    self._apply(job_id, Exited(exit_code=-1, signal=0, at=now, lost=reason))
                else:
                    self._apply(job_id, LaunchFailed(reason=reason, at=now))
                self._release(job_id)

    def _track_logs(self, job_id: str, finished: bool) -> None:
        path = self.log_path(job_id)
        if path.exists():
            self._logs.hub.track(job_id, path, finished=finished)
            self._logs.start_copy(job_id)

    def _reattach(self, job: Job, pid: int) -> None:
        rt = self._runtime[job.id]
        rt.cgroup = self._cgroups.open(job.id)
        rt.limits = self._limits(job.spec)
        log.info("re-attached to running job %s (pid %d)", job.id, pid)
        if self._metrics is not None and rt.cgroup is not None:
            self._metrics.start_job(job.id, rt.cgroup, rt.limits, init_pid=pid)
        timeout = self._config.jobs.job_timeout_s
        if timeout > 0:
            left = max(0.0, job.started_at + timeout - self._clock())
            loop = asyncio.get_running_loop()
            rt.timers.append(loop.call_later(left, self._on_timeout, job.id))

    # ---- launcher events -----------------------------------------------

    def on_exit(self, event: JobExit) -> None:
        """Called by the launcher client when a job's init has ended."""
        job_id = event.job_id
        rt = self._runtime.get(job_id)
        try:
            job = self._registry.get(job_id)
        except KeyError:
            return
        if rt is None or job.status.is_final:
            return
        if job.status is not JobStatus.RUNNING:
            # The exit can be read in the same batch as the launch reply, before
            # _start has recorded Started: keep it for _start to apply.
            rt.early_exit = event
            return
        oom = False
        if rt.cgroup is not None:
            try:
                oom = rt.cgroup.oom_killed()
            except OSError:
                log.exception("reading OOM state of job %s", job_id)
        # tini reports a command killed by signal N as exit code 128 + N.
        signum = event.signal or (event.exit_code - 128 if 128 < event.exit_code < 160 else 0)
        exited = Exited(
            exit_code=event.exit_code,
            signal=signum,
            at=event.ended_at_ns / 1e9,
            stopped_by=rt.stopped_by,
            timed_out=rt.timed_out,
            oom_killed=oom,
            lost=recovery.LOST_REASON if event.lost else "",
        )
        job = self._apply(job_id, exited)
        log.info("job %s %s (%s)", job_id, job.status, job.end_reason)
        rt.exited.set()
        self._release(job_id)

    # ---- internals -----------------------------------------------------

    def _apply(self, job_id: str, event: Event) -> Job:
        job = self._registry.apply(job_id, event)
        self._changed(job)
        return job

    def _changed(self, job: Job) -> None:
        if self._listener is not None:
            self._listener.changed(job)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _arm_schedule(self, job_id: str, at: float) -> None:
        delay = max(0.0, at - self._clock())
        loop = asyncio.get_running_loop()
        handle = loop.call_later(delay, lambda: self._spawn(self._scheduled_due(job_id)))
        self._runtime[job_id].timers.append(handle)

    async def _scheduled_due(self, job_id: str) -> None:
        try:
            job = self._registry.get(job_id)
        except KeyError:
            return
        if job.status is not JobStatus.SCHEDULED:
            return
        if self._registry.has_slot(self._config.jobs.max_concurrent_jobs):
            await self._start(job_id)
        else:
            self._apply(job_id, Queued())
            self._registry.enqueue(job_id)

    def _prepare_dir(self, job_id: str, spec: JobSpec) -> tuple[str, ...]:
        """Create the job's directory with its workspace and uploads; all or nothing."""
        job_dir = self._config.layout.job_dir(job_id)
        try:
            workspace = job_dir / "work"
            workspace.mkdir(parents=True, mode=0o755)
            uid, gid = self.run_as(spec)
            owner = (uid, gid) if uid or gid else None
            if owner is not None:
                os.chown(workspace, uid, gid)
            names = write_uploads(workspace, spec.uploads, owner=owner)
            self.log_path(job_id).touch()
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        return names

    def _open_logs(self, job: Job) -> None:
        """Create the job's directory (if its submission did not need it yet) and
        start following and copying its log. Deferred to the start so that
        accepting a scheduled or queued job costs no file system work."""
        if not self.log_path(job.id).exists():
            self._prepare_dir(job.id, replace(job.spec, uploads=()))
        self._logs.hub.track(job.id, self.log_path(job.id))
        self._logs.start_copy(job.id)
        self._runtime[job.id].log_ready.set()

    def _cancel(self, job_id: str, caller: str) -> Job:
        job = self._apply(job_id, Canceled(by=caller, at=self._clock()))
        self._release(job_id)
        return job

    def _limits(self, spec: JobSpec) -> Limits:
        d = self._config.cgroup.defaults
        devices = self._io_devices
        if self._volumes is not None and spec.volumes:
            # maxIobps covers the volumes' loop devices too.
            devices = tuple(dict.fromkeys(devices + self._volumes.block_devices(spec.volumes)))
        return Limits(
            max_cpu_percent=spec.max_cpu or d.max_cpu,
            cpu_cores=spec.cpu_cores,
            max_memory_bytes=(spec.max_memory_mb or d.max_memory_mb) * 1024 * 1024,
            max_io_bps=spec.max_iobps or d.max_iobps,
            max_pids=d.max_pids,
            io_devices=devices,
        )

    @functools.cached_property
    def _io_devices(self) -> tuple[str, ...]:
        """The block device(s) under the jobs' roots and workspaces (looked up once)."""
        from joblet.resources.devices import block_devices_for

        try:
            return block_devices_for(self._config.layout.jobs)
        except OSError:
            return ()

    def _allocate_network(self, job: Job) -> dict[str, Any]:
        if self._networks is None:
            return {}
        spec = job.spec
        # Permission for `host` was checked with the caller's role at submission.
        return self._networks.allocate(
            job.id, spec.network, spec.name,
            ingress_bps=spec.max_ingress_bps, egress_bps=spec.max_egress_bps, admin=True,
        )  # fmt: skip

    def _launch_spec(
        self, job: Job, cgroup: JobCgroup, network: dict[str, Any] | None = None
    ) -> LaunchSpec:
        job_dir = self._config.layout.job_dir(job.id)
        jobs_cfg = self._config.jobs
        uid, gid = self.run_as(job.spec)
        return LaunchSpec(
            job_id=job.id,
            argv=(job.spec.command, *job.spec.args),
            env=job_environment(job.spec, job.id, job.spec.name),
            hostname=job.spec.name or job.id[:8],
            job_dir=str(job_dir),
            workspace=str(job_dir / "work"),
            log_path=str(self.log_path(job.id)),
            cgroup_procs=tuple(str(p) for p in cgroup.procs_files()),
            allowed_mounts=self._config.filesystem.allowed_mounts,
            workdir=job.spec.workdir or "/work",
            tmp_size_bytes=self._config.filesystem.tmp_size_bytes,
            max_log_bytes=jobs_cfg.max_log_bytes,
            uid=uid,
            gid=gid,
            network=network or {},
            volume_mounts=(
                self._volumes.resolve_for_job(job.spec.volumes)
                if self._volumes is not None and job.spec.volumes
                else ()
            ),
        )

    async def _start(self, job_id: str) -> Job:
        job = self._registry.get(job_id)
        rt = self._runtime[job_id]
        self._registry.starting += 1
        try:
            self._open_logs(job)
            rt.limits = self._limits(job.spec)
            network = self._allocate_network(job)
            rt.cgroup = self._cgroups.create(job_id, rt.limits)
            pid = await self._launcher.launch(self._launch_spec(job, rt.cgroup, network))
        except (JobletError, OSError) as exc:
            reason = f"launch failed: {exc}"
            log.warning("job %s %s", job_id, reason)
            self._registry.starting -= 1
            job = self._apply(job_id, LaunchFailed(reason=reason, at=self._clock()))
            self._release(job_id)
            return job
        self._registry.starting -= 1
        job = self._apply(job_id, Started(pid=pid, at=self._clock()))
        if rt.early_exit is not None:
            self.on_exit(rt.early_exit)
            return self._registry.get(job_id)
        if self._metrics is not None and rt.limits is not None:
            self._metrics.start_job(job_id, rt.cgroup, rt.limits, init_pid=pid, from_start=True)
        timeout = self._config.jobs.job_timeout_s
        if timeout > 0:
            loop = asyncio.get_running_loop()
            rt.timers.append(loop.call_later(timeout, self._on_timeout, job_id))
        return job

    def _on_timeout(self, job_id: str) -> None:
        rt = self._runtime.get(job_id)
        if rt is None or rt.exited.is_set():
            return
        rt.timed_out = True
        self._spawn(self._terminate(job_id))

    async def _terminate(self, job_id: str) -> None:
        """SIGTERM to every process of the job, a grace period, then kill what is left."""
        rt = self._runtime.get(job_id)
        if rt is None or rt.cgroup is None or rt.exited.is_set():
            return
        cgroup = rt.cgroup
        for pid in _safe_pids(cgroup):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(rt.exited.wait(), self._config.jobs.stop_grace_s)
        except TimeoutError:
            try:
                async with rt.cgroup_lock:
                    await asyncio.to_thread(cgroup.kill_all)
            except (OSError, JobletError) as exc:
                log.warning("killing job %s: %s", job_id, exc)
            # The launcher reports the exit once init is reaped; if it is gone
            # the supervisor-lost path settles the job instead.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.exited.wait(), KILL_SETTLE_S)

    def _release(self, job_id: str) -> None:
        """The job reached a final status: free its resources and its slot."""
        rt = self._runtime.get(job_id)
        if rt is not None:
            rt.cancel_timers()
            rt.log_ready.set()
            if rt.cgroup is not None:
                cgroup, rt.cgroup = rt.cgroup, None
                self._spawn(self._remove_cgroup(job_id, cgroup, rt.cgroup_lock))
        self._logs.hub.finish(job_id)
        if self._networks is not None:
            try:
                self._networks.release(job_id)
            except (OSError, JobletError):
                log.exception("releasing the network of job %s", job_id)
        self._start_queued()

    async def _remove_cgroup(self, job_id: str, cgroup: JobCgroup, lock: asyncio.Lock) -> None:
        if self._metrics is not None:
            # The final sample reads the cgroup's totals, so it comes before removal.
            try:
                await self._metrics.finish_job(job_id)
            except (OSError, JobletError):
                log.exception("final metrics sample of job %s", job_id)
        try:
            async with lock:
                await asyncio.to_thread(_kill_and_remove, cgroup)
        except (OSError, JobletError):
            log.exception("removing cgroup of job %s", cgroup.job_id)

    def _start_queued(self) -> None:
        if self._closing:
            return
        limit = self._config.jobs.max_concurrent_jobs
        while (job_id := self._registry.next_queued(limit)) is not None:
            self._registry.starting += 1  # reserve the slot until _start runs
            self._spawn(self._start_reserved(job_id))

    async def _start_reserved(self, job_id: str) -> None:
        self._registry.starting -= 1
        try:
            job = self._registry.get(job_id)
        except KeyError:
            return
        if job.status is JobStatus.QUEUED:
            await self._start(job_id)

    def _delete(self, job_id: str) -> None:
        self._registry.remove(job_id)
        if self._listener is not None:
            self._listener.deleted(job_id)
        rt = self._runtime.pop(job_id, None)
        if rt is not None:
            rt.cancel_timers()
        self._logs.delete(job_id)
        shutil.rmtree(self._config.layout.job_dir(job_id), ignore_errors=True)


def _safe_pids(cgroup: JobCgroup) -> list[int]:
    # The job may end (and its cgroup go) while we look: that is not an error.
    try:
        return cgroup.pids()
    except (OSError, JobletError):
        return []


def _kill_and_remove(cgroup: JobCgroup) -> None:
    cgroup.kill_all()
    cgroup.remove()


__all__ = ["IllegalTransition", "JobManager", "Launcher"]
