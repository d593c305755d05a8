"""Helpers of the isolation tests: a daemon starter that also takes
cgroup defaults and extra environment, host-side cgroup and /proc probes, and
a cleanup that leaves no job process, cgroup or parent group behind.

It holds no tests; it lives under a test_isolation_* name only because the
isolation tests may add files there and nowhere else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.testing.cgroups import favour_cpu

from .conftest import RunningDaemon, launch_daemon, wait_status

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
CGROUP_ROOT = Path("/sys/fs/cgroup")


# ---- starting and stopping a daemon -------------------------------------------


def start_isolation_daemon(
    tmp: Path,
    *,
    env: Mapping[str, str] | None = None,
    joblet: Mapping[str, Any] | None = None,
    cgroup_defaults: Mapping[str, Any] | None = None,
) -> RunningDaemon:
    """`joblet serve` like conftest's start_daemon, plus cgroup defaults and env."""
    sections = {"joblet": dict(joblet or {}), "cgroup": {"defaults": dict(cgroup_defaults or {})}}
    return launch_daemon(tmp, sections, env=env)


def stop_isolation_daemon(daemon: RunningDaemon) -> None:
    """Stop daemon and launcher; kill and remove whatever a test left behind."""
    daemon.stop()


def cgroup_parent(daemon: RunningDaemon) -> str:
    return daemon.cgroup_parent()


# ---- host-side cgroup probes ---------------------------------------------------


def hierarchies(mountinfo: str = "/proc/self/mountinfo") -> list[Path]:
    """Mount points of every cgroup (v1) and cgroup2 filesystem of the host."""
    found = []
    for line in Path(mountinfo).read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] in ("cgroup", "cgroup2"):
            found.append(Path(left.split()[4]))
    return found


def job_groups(parent: str) -> list[Path]:
    """Every job-* directory under the daemon's parent, in every hierarchy."""
    groups: list[Path] = []
    for hierarchy in hierarchies():
        base = hierarchy / parent
        if base.is_dir():
            groups += [p for p in base.iterdir() if p.is_dir() and p.name.startswith("job-")]
    return groups


def group_pids(group: Path) -> set[int]:
    pids: set[int] = set()
    for procs in [group / "cgroup.procs", *group.rglob("*/cgroup.procs")]:
        try:
            pids |= {int(x) for x in procs.read_text().split()}
        except FileNotFoundError:
            continue
    return pids


def job_pids(daemon: RunningDaemon, job_id: str) -> set[int]:
    """Host pids of a job, from its group in the pids hierarchy."""
    return group_pids(CGROUP_ROOT / "pids" / cgroup_parent(daemon) / f"job-{job_id}")


def job_group(daemon: RunningDaemon, controller: str, job_id: str) -> Path:
    return CGROUP_ROOT / controller / cgroup_parent(daemon) / f"job-{job_id}"


def favour_daemon_cpu(daemon: RunningDaemon) -> None:
    """The highest CPU weight for the daemon's cgroup parent (made with its
    first job): on a loaded host its jobs still get what their limits allow."""
    for hierarchy in hierarchies():
        group = hierarchy / cgroup_parent(daemon)
        if group.is_dir():
            favour_cpu(group)


# ---- /proc probes -------------------------------------------------------------


def host_pids() -> set[int]:
    return {int(name) for name in os.listdir("/proc") if name.isdigit()}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def status_field(pid: int, field: str) -> str:
    """A field of /proc/<pid>/status ("" when the process or field is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == field:
            return value.strip()
    return ""


def rss_kib(pid: int) -> int:
    value = status_field(pid, "VmRSS")
    return int(value.split()[0]) if value else 0


def launcher_pid(daemon: RunningDaemon) -> int:
    return int((daemon.root / "run" / "launcher" / "launcher.pid").read_text().strip())


# ---- running jobs -------------------------------------------------------------


def run(stub: pb_grpc.JobServiceStub, command: str, *args: str, **fields: Any) -> str:
    return str(stub.RunJob(pb.RunJobRequest(command=command, args=list(args), **fields)).jobUuid)


def logs(stub: pb_grpc.JobServiceStub, job_id: str) -> str:
    return b"".join(c.payload for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id))).decode()


def run_sh(
    stub: pb_grpc.JobServiceStub, script: str, timeout: float = 20, **fields: Any
) -> tuple[Any, str]:
    """Run `sh -c script` to its end; (final status, output). stderr goes to
    stdout: two pipes would not keep the order of the script's lines."""
    job_id = run(stub, "sh", "-c", f"exec 2>&1; {script}", **fields)
    output = logs(stub, job_id)
    return wait_status(stub, job_id, FINAL, timeout=timeout), output


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_gone(paths: Iterable[Path], timeout: float = 10) -> None:
    left = list(paths)
    wait_for(lambda: not any(p.exists() for p in left), timeout, f"removal of {left}")
