"""Launcher start latency: LauncherClient.launch(spec) round trip, which
returns once the job's command has exec'd.

    .venv/bin/python bench/launcher_start.py [--quick]

A launcher of our own (no daemon) in a temp root; each launch of `true` gets a
real cgroup (v1 or v2, as detected) under a unique parent with the daemon's
default limits, built like joblet.jobs.launch.build_launch_spec. Only the
launch round trip is timed; the cgroup creation is reported apart. Baselines
from this process: `unshare` of the same namespaces running `true`, and a
bare fork+exec of `true` (both timed to exit, which is a few microseconds
past exec), each run right after every launch so that both see the same
load. Also reported: the CPU time of the launcher and its jobs per launch
(from /proc, so it includes reaping and the exit records) against the CPU
time of one `unshare`. Target: p50 <= 3x the bare unshare.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
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
    """What build_launch_spec (joblet.jobs.launch) builds for `true` by default."""
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


class Samples:
    def __init__(self) -> None:
        self.creates: list[float] = []
        self.launches: list[float] = []
        self.unshares: list[float] = []
        self.execs: list[float] = []
        self.launch_cpu = 0.0  # seconds per launch: the launcher and its jobs
        self.unshare_cpu = 0.0  # seconds per bare unshare


def process_cpu(pid: int) -> float:
    """CPU seconds of `pid` and of its reaped children (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


async def measure(root: Path, parent: str, runs: int) -> Samples:
    socket_path, state_dir = str(root / "launcher.sock"), str(root / "launcher")
    await ensure_launcher(socket_path, state_dir)
    client = await LauncherClient.connect(socket_path)
    pid = await client.ping()
    found = Samples()
    unshare = unshare_argv("true", extra_ns=SAME_NS)
    try:
        bench = Bench(root, client, create_cgroup_manager(CGROUP_ROOT, parent))
        for _ in range(WARMUP):
            await bench.one()
        launcher_cpu, unshare_cpu = process_cpu(pid), 0.0
        for _ in range(runs):
            create, launch = await bench.one()
            found.creates.append(create)
            found.launches.append(launch)
            before = children_cpu()
            found.unshares += time_command(unshare, 1)
            unshare_cpu += children_cpu() - before
            found.execs += time_command(["true"], 1)
        found.launch_cpu = (process_cpu(pid) - launcher_cpu) / runs
        found.unshare_cpu = unshare_cpu / runs
    finally:
        await client.close()
        stop_pid(pid)
    return found


def main() -> None:
    args = parse_args(__doc__ or "")
    require_root()
    runs = 100 if args.quick else 600
    report = Report("launcher_start", args.quick)
    root = Path(tempfile.mkdtemp(prefix="joblet-bench-launcher-"))
    parent = f"joblet-bench-{uuid.uuid4().hex[:8]}"
    try:
        found = asyncio.run(measure(root, parent, runs))
    finally:
        remove_cgroup_parent(parent)
        with contextlib.suppress(OSError):
            shutil.rmtree(root)
    creates, launches = found.creates, found.launches
    bare_unshare, bare_exec = found.unshares, found.execs
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
        "launch_cpu_ms": found.launch_cpu * 1e3,
    }
    report.baselines = {
        "unshare_p50_ms": p50(bare_unshare) * 1e3,
        "unshare_p99_ms": p99(bare_unshare) * 1e3,
        "fork_exec_p50_ms": p50(bare_exec) * 1e3,
        "fork_exec_p99_ms": p99(bare_exec) * 1e3,
        "unshare_cpu_ms": found.unshare_cpu * 1e3,
    }
    report.check("p50 vs unshare", ratio <= 3.0, "<= 3x bare unshare at p50")
    report.emit()


if __name__ == "__main__":
    main()
