"""Launcher start latency: LauncherClient.launch(spec) round trip, which
returns once the job's command has exec'd.

    .venv/bin/python bench/launcher_start.py [--quick]

A launcher of our own (no daemon) in a temp root; each launch of `true` gets a
real cgroup (v1 or v2, as detected) under a unique parent with the daemon's
default limits, built like JobManager._launch_spec builds it. Only the
launch round trip is timed; the cgroup creation is reported apart. Baselines
from this process: `unshare` of the same namespaces running `true`, and a
bare fork+exec of `true` (both timed to exit, which is a few microseconds
past exec). Target: p50 <= 3x the bare unshare.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from common import (
    CGROUP_ROOT,
    Report,
    describe_ms,
    p50,
    p99,
    parse_args,
    remove_cgroup_parent,
    require_root,
    stop_pid,
    time_command,
    unshare_argv,
)

from joblet.config.model import FilesystemConfig, LimitDefaults
from joblet.isolation.client import LauncherClient, ensure_launcher
from joblet.isolation.spec import JobExit, LaunchSpec
from joblet.jobs.environment import job_environment
from joblet.jobs.model import JobSpec
from joblet.resources.detect import create_cgroup_manager
from joblet.resources.interface import CgroupManager, JobCgroup, Limits

WARMUP = 10
SAME_NS = ("--net", "--cgroup")


def launch_spec(root: Path, job_id: str, cgroup: JobCgroup) -> LaunchSpec:
    """What JobManager._launch_spec builds for `true` with the default config."""
    job_dir = root / "jobs" / job_id
    (job_dir / "work").mkdir(parents=True)
    (job_dir / "output.log").touch()
    fs = FilesystemConfig()
    return LaunchSpec(
        job_id=job_id,
        argv=("true",),
        env=job_environment(JobSpec(command="true"), job_id, ""),
        hostname=job_id[:8],
        job_dir=str(job_dir),
        workspace=str(job_dir / "work"),
        log_path=str(job_dir / "output.log"),
        cgroup_procs=tuple(str(p) for p in cgroup.procs_files()),
        allowed_mounts=fs.allowed_mounts,
        tmp_size_bytes=fs.tmp_size_bytes,
    )


class Bench:
    def __init__(self, root: Path, client: LauncherClient, cgroups: CgroupManager) -> None:
        self.root = root
        self.client = client
        self.cgroups = cgroups
        self.exits: dict[str, asyncio.Future[JobExit]] = {}
        client.on_exit(self._on_exit)

    def _on_exit(self, event: JobExit) -> None:
        future = self.exits.get(event.job_id)
        if future is not None and not future.done():
            future.set_result(event)

    async def one(self) -> tuple[float, float]:
        """(cgroup creation, launch round trip) in seconds; waits for the exit."""
        job_id = str(uuid.uuid4())
        exited = self.exits[job_id] = asyncio.get_running_loop().create_future()
        start = time.perf_counter()
        cgroup = self.cgroups.create(job_id, Limits(max_pids=LimitDefaults().max_pids))
        created = time.perf_counter()
        spec = launch_spec(self.root, job_id, cgroup)
        begun = time.perf_counter()
        await self.client.launch(spec)
        launched = time.perf_counter()
        exit_ = await asyncio.wait_for(exited, 10)
        del self.exits[job_id]
        if exit_.exit_code != 0:
            raise AssertionError(f"`true` exited {exit_.exit_code}")
        cgroup.kill_all()
        cgroup.remove()
        shutil.rmtree(self.root / "jobs" / job_id)
        return created - start, launched - begun


async def measure(root: Path, parent: str, runs: int) -> tuple[list[float], list[float]]:
    socket_path, state_dir = str(root / "launcher.sock"), str(root / "launcher")
    await ensure_launcher(socket_path, state_dir)
    client = await LauncherClient.connect(socket_path)
    pid = await client.ping()
    try:
        bench = Bench(root, client, create_cgroup_manager(CGROUP_ROOT, parent))
        for _ in range(WARMUP):
            await bench.one()
        pairs = [await bench.one() for _ in range(runs)]
    finally:
        await client.close()
        stop_pid(pid)
    return [c for c, _ in pairs], [launch for _, launch in pairs]


def main() -> None:
    args = parse_args(__doc__ or "")
    require_root()
    runs = 100 if args.quick else 600
    report = Report("launcher_start", args.quick)
    root = Path(tempfile.mkdtemp(prefix="joblet-bench-launcher-"))
    parent = f"joblet-bench-{uuid.uuid4().hex[:8]}"
    try:
        creates, launches = asyncio.run(measure(root, parent, runs))
    finally:
        remove_cgroup_parent(parent)
        with contextlib.suppress(OSError):
            shutil.rmtree(root)
    bare_unshare = time_command(unshare_argv("true", extra_ns=SAME_NS), runs)
    bare_exec = time_command(["true"], runs)
    print("launch     ", describe_ms(launches))
    print("cgroup     ", describe_ms(creates))
    print("unshare    ", describe_ms(bare_unshare))
    print("fork+exec  ", describe_ms(bare_exec))
    ratio = p50(launches) / p50(bare_unshare)
    report.figures = {
        "launch_p50_ms": p50(launches) * 1e3,
        "launch_p99_ms": p99(launches) * 1e3,
        "cgroup_create_p50_ms": p50(creates) * 1e3,
        "launch_vs_unshare_p50_x": ratio,
    }
    report.baselines = {
        "unshare_p50_ms": p50(bare_unshare) * 1e3,
        "unshare_p99_ms": p99(bare_unshare) * 1e3,
        "fork_exec_p50_ms": p50(bare_exec) * 1e3,
        "fork_exec_p99_ms": p99(bare_exec) * 1e3,
    }
    report.check("p50 vs unshare", ratio <= 3.0, "<= 3x bare unshare at p50")
    report.emit()


if __name__ == "__main__":
    main()
