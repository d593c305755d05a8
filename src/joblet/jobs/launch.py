"""Starting a job: its limits, network and cgroup, the spec the launcher
runs, and settling the job when any of that fails."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from joblet.config.model import DaemonConfig, LimitDefaults
from joblet.errors import JobletError, NotFound, Unavailable
from joblet.gpu.allocator import GpuAllocator, wants_gpus
from joblet.gpu.job_setup import GpuJobSetup, gpu_job_setup
from joblet.isolation.records import clear_exit, read_exit
from joblet.isolation.spec import LaunchSpec
from joblet.jobs import recovery
from joblet.jobs.ending import JobEnding
from joblet.jobs.environment import job_environment
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.open_files import open_files_cap, read_file_max
from joblet.jobs.ports import JobMetrics, JobNetworks, JobVolumes, Launcher
from joblet.jobs.runtime_jobs import BUILD_HOSTNAME
from joblet.jobs.state_machine import GpusGranted, GpuWait, LaunchFailed, Started, Starting
from joblet.jobs.table import JobTable
from joblet.jobs.workspace import log_path, prepare_job_dir, run_as
from joblet.logs.service import JobLogs
from joblet.resources.device_rules import job_rules
from joblet.resources.interface import CgroupManager, JobCgroup, Limits
from joblet.runtimes.seams import BuildPlan, RuntimeMount
from joblet.workspaces.store import WorkspaceStore, plain_store

log = logging.getLogger(__name__)

RECORD_WAIT_S = 2.0  # how long a start waits for the state helper to store the job
NO_DEFAULTS = LimitDefaults(max_pids=0)  # what applies when the node has no cgroups


class JobStarter:
    """Takes a job from waiting to running (or to a launch failure)."""

    def __init__(
        self,
        config: DaemonConfig,
        table: JobTable,
        cgroups: CgroupManager,
        launcher: Launcher,
        logs: JobLogs,
        *,
        ending: JobEnding,
        clock: Callable[[], float],
        metrics: JobMetrics | None = None,
        networks: JobNetworks | None = None,
        volumes: JobVolumes | None = None,
        workspaces: WorkspaceStore | None = None,
        gpus: GpuAllocator | None = None,
        on_started: Callable[[Job], None] | None = None,
    ) -> None:
        self._gpus = gpus
        self._on_started = on_started
        self._config = config
        self._workspaces = workspaces or plain_store(config.layout)
        self._table = table
        self._cgroups = cgroups
        self._launcher = launcher
        self._logs = logs
        self._ending = ending
        self._clock = clock
        self._metrics = metrics
        self._networks = networks
        self._volumes = volumes

    async def start(self, job_id: str) -> Job:
        registry = self._table.registry
        job = registry.get(job_id)
        rt = self._table.runtime[job_id]
        gpu = GpuJobSetup()
        if self._gpus is not None and wants_gpus(job.spec):
            grant = self._gpus.take(job_id, job.spec)
            if grant is None:  # it waits for GPUs; their release starts it
                reason = self._gpus.wait_reason(job_id)
                job = self._table.apply(job_id, GpuWait(at=self._clock(), reason=reason))
                await self._await_record(job_id)  # answered once stored, as other waits
                return job
            job = self._table.apply(job_id, GpusGranted(grant.indices))
            gpu = gpu_job_setup(self._gpus.host, grant.indices)
        registry.starting += 1
        try:
            if job.status is not JobStatus.INITIALIZING:  # queued or scheduled until now
                job = self._table.apply(job_id, Starting())
            self._open_logs(job)
            rt.limits = self.limits(job.spec, gpu)
            network = self._allocate_network(job)
            rt.cgroup = self._cgroups.create(job_id, rt.limits)
            spec = build_launch_spec(
                self._config, job, rt.cgroup, network, self._volumes, workspaces=self._workspaces
            )
            spec = with_runtime(spec, job, rt.runtime_mount, rt.build)
            if gpu.devices:
                spec = replace(
                    spec, devices=gpu.devices, env=gpu.job_env(spec.env),
                    driver_proc=gpu.driver_proc, gpu_bus_ids=gpu.bus_ids,
                    driver_files=gpu.driver_files,
                )  # fmt: skip
            if job.spec.stdin:
                rt.stdin_fd, path = open_stdin_fifo(self._config.layout.job_dir(job_id))
                spec = replace(spec, stdin_path=path)
            if job.preemptions:  # a requeued job: its last run's end is not this one's
                clear_exit(str(self._config.layout.job_dir(job_id)))
            await self._await_record(job_id)
            pid = await self._launch(spec, rt.cgroup)
        except (JobletError, OSError) as exc:
            reason = f"launch failed: {exc}"
            log.warning("job %s %s", job_id, reason)
            registry.starting -= 1
            rt.close_stdin()
            job = self._table.apply(job_id, LaunchFailed(reason=reason, at=self._clock()))
            self._ending.release(job_id)
            return job
        registry.starting -= 1
        job = self._table.apply(job_id, Started(pid=pid, at=self._clock()))
        if rt.early_exit is not None:
            self._ending.on_exit(rt.early_exit)
            return registry.get(job_id)
        if self._metrics is not None and rt.limits is not None:
            indices = job.gpu_indices
            self._metrics.start_job(
                job_id, rt.cgroup, rt.limits, init_pid=pid, from_start=True,
                gpu_indices=indices, gpu_reader=self._gpus.reader(indices) if self._gpus else None,
            )  # fmt: skip
        timeout = rt.timeout_s or self._config.jobs.job_timeout_s
        if timeout > 0:
            rt.call_later(timeout, self._ending.on_timeout, job_id)
        if self._on_started is not None:
            self._on_started(job)
        return job

    async def _launch(self, spec: LaunchSpec, cgroup: JobCgroup) -> int:
        try:
            return await self._launcher.launch(spec)
        except Unavailable as exc:
            broke = exc
        # The connection to the launcher broke during the launch (the launcher
        # died, say); the link connects again and the next launch waits for it.
        # The job is launched again, once, only if it surely never started.
        if not await asyncio.to_thread(never_started, self._cgroups, cgroup, spec.job_dir):
            log.warning("job %s: %s; it may have started: not launching again", spec.job_id, broke)
            raise Unavailable(recovery.BROKEN_LAUNCH_REASON) from broke
        log.warning("job %s: %s; it never started: launching again", spec.job_id, broke)
        return await self._launcher.launch(spec)

    def limits(self, spec: JobSpec, gpu: GpuJobSetup | None = None) -> Limits:
        # Without cgroups the node's defaults cannot apply; a job's own limits are
        # still asked for, and refused by the null backend with the reason.
        d = self._config.cgroup.defaults if self._cgroups.version != "none" else NO_DEFAULTS
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
            devices=job_rules(gpu.rules if gpu else ()) if self._cgroups.device_filter else (),
        )

    @functools.cached_property
    def _io_devices(self) -> tuple[str, ...]:
        """The block device(s) under the jobs' roots and workspaces (looked up once)."""
        from joblet.resources.devices import block_devices_for

        try:
            paths = [self._config.layout.jobs]
            if self._workspaces.root is not None:
                paths.append(self._workspaces.root)  # its loop device
            return block_devices_for(*paths)
        except OSError:
            return ()

    async def _await_record(self, job_id: str) -> None:
        """The store must hold the job as starting before it runs: a daemon
        killed right after the launch would otherwise restart without knowing
        the job (it would run unlisted), or, for a queued or scheduled one,
        still see it waiting and run it a second time. A helper that does not
        answer in time does not hold jobs back for longer."""
        if not await self._table.recorded(RECORD_WAIT_S):
            log.warning(
                "job %s: the state helper did not confirm its record within %gs; "
                "starting it anyway (a daemon crash now could orphan it)",
                job_id,
                RECORD_WAIT_S,
            )

    def _open_logs(self, job: Job) -> None:
        """Create the job's directory (if its submission did not need it yet) and
        start following and copying its log. Deferred to the start so that
        accepting a scheduled or queued job costs no file system work."""
        # The job's record travels to the store while its directory and
        # cgroup are made: the wait for it before the launch is then short.
        self._table.push()
        layout = self._config.layout
        new_log = not log_path(layout, job.id).exists()
        if new_log:
            prepare_job_dir(
                layout, self._config.jobs, job.id, replace(job.spec, uploads=()), self._workspaces
            )
        self._logs.hub.track(job.id, log_path(layout, job.id))
        self._logs.start_copy(job.id, new_log=new_log)
        self._table.runtime[job.id].log_ready.set()

    def _allocate_network(self, job: Job) -> dict[str, Any]:
        if self._networks is None:
            return {}
        spec = job.spec
        # Permission for `host` was checked with the caller's role at submission.
        return self._networks.allocate(
            job.id, spec.network, spec.name,
            ingress_bps=spec.max_ingress_bps, egress_bps=spec.max_egress_bps, admin=True,
        )  # fmt: skip


STDIN_FIFO = "stdin"


def open_stdin_fifo(job_dir: Path) -> tuple[int, str]:
    """Make the job's stdin FIFO and open it for the daemon: (fd, path).
    O_RDWR opens a FIFO without waiting for a reader (fifo(7)) and keeps a
    writer there until the daemon closes it, so the job sees EOF only then."""
    path = job_dir / STDIN_FIFO
    path.unlink(missing_ok=True)
    os.mkfifo(path, 0o600)
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    return fd, str(path)


def with_runtime(
    spec: LaunchSpec, job: Job, mount: RuntimeMount | None, build: BuildPlan | None
) -> LaunchSpec:
    """`spec` with the job's runtime (tree, mounts, environment) or its build's sandbox."""
    if build is not None:
        return replace(
            spec,
            hostname=BUILD_HOSTNAME,
            uid=0,
            gid=0,
            build_source=build.source_dir,
            build_staging=build.staging_dir,
            build_scratch_bytes=build.scratch_bytes,
        )
    if job.spec.runtime and mount is None:
        raise NotFound(f"runtime {job.spec.runtime} (build {job.runtime_build}) is gone")
    if mount is None:
        return spec
    env = job_environment(job.spec, job.id, job.spec.name, mount.environment)
    return replace(spec, env=env, runtime_tree=mount.tree, runtime_mounts=tuple(mount.extra_mounts))


def build_launch_spec(
    config: DaemonConfig,
    job: Job,
    cgroup: JobCgroup,
    network: dict[str, Any] | None = None,
    volumes: JobVolumes | None = None,
    *,
    workspaces: WorkspaceStore | None = None,
) -> LaunchSpec:
    """What the launcher needs to run `job` inside `cgroup`."""
    workspaces = workspaces or plain_store(config.layout)
    job_dir = config.layout.job_dir(job.id)
    uid, gid = run_as(config.jobs, job.spec)
    return LaunchSpec(
        job_id=job.id,
        argv=(job.spec.command, *job.spec.args),
        env=job_environment(job.spec, job.id, job.spec.name),
        hostname=job.spec.name or job.id[:8],
        job_dir=str(job_dir),
        workspace=str(workspaces.path(job.id)),
        log_path=str(log_path(config.layout, job.id)),
        cgroup_procs=tuple(str(p) for p in cgroup.procs_files()),
        allowed_mounts=config.filesystem.allowed_mounts,
        workdir=job.spec.workdir or "/work",
        tmp_size_bytes=config.filesystem.tmp_size_bytes,
        max_log_bytes=config.jobs.max_log_bytes,
        max_open_files=open_files_cap(
            config.jobs.max_open_files, config.cgroup.defaults.max_pids, read_file_max()
        ),
        uid=uid,
        gid=gid,
        network=network or {},
        volume_mounts=(
            volumes.resolve_for_job(job.spec.volumes)
            if volumes is not None and job.spec.volumes
            else ()
        ),
    )


def never_started(cgroups: CgroupManager, cgroup: JobCgroup, job_dir: str) -> bool:
    """After a launch whose connection broke: whether the job surely never
    started (then it may be launched again). The job's init joins its cgroup
    before anything of the job runs, and running costs CPU time there, so a
    cgroup no process ever used means the command never ran; whatever is in
    it is killed first."""
    used: bool | None = None
    if cgroups.version != "none":
        cgroup.kill_all()
        used = bool(cgroup.pids()) or cgroup.read_stats().cpu_usage_usec > 0
    exited = read_exit(job_dir) is not None
    return isinstance(recovery.after_broken_launch(exited, used), recovery.Relaunch)
