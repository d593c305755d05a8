"""Resource limits of a job, measured on the host from the
kernel's own accounting while a real daemon runs the job."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.resources.detect import create_cgroup_manager
from joblet.testing.cgroups import CGROUP_ROOT, favour_cpu, measure_cpu

from .conftest import ROOT_NEEDED, RunningDaemon, wait_status
from .test_isolation_support import (
    FINAL,
    cgroup_parent,
    cmdline,
    host_pids,
    job_group,
    job_groups,
    logs,
    run,
    run_sh,
    start_isolation_daemon,
    stop_isolation_daemon,
    wait_for,
    wait_gone,
)

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

MAX_PIDS = 64
DD_RATE = re.compile(r"^(\d+) bytes .* copied, ([\d.]+) s,", re.MULTILINE)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_isolation_daemon(
        tmp_path_factory.mktemp("limits"),
        joblet={"stopGracePeriod": "1s"},
        cgroup_defaults={"maxPids": MAX_PIDS},
    )
    yield running
    stop_isolation_daemon(running)


def test_max_cpu_50_uses_half_a_cpu(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = run(stub, "sh", "-c", "while :; do :; done", maxCpu=50)
    try:
        wait_status(stub, job_id, {"RUNNING"})
        group = create_cgroup_manager(CGROUP_ROOT, cgroup_parent(daemon)).open(job_id)
        assert group is not None
        # Measured against the job's limit, not against the host's other work.
        for procs in group.procs_files():
            favour_cpu(procs.parent)
        # Past the first period, which may start with a full quota.
        wait_for(lambda: group.read_stats().cpu_usage_usec > 300_000, 30, "the job's first CPU")
        rate, throttled = measure_cpu(group, cpu_seconds=1.5, timeout=30)
    finally:
        stub.StopJob(pb.StopJobReq(uuid=job_id))
    assert 0.4 <= rate <= 0.6, f"{rate:.3f} CPU-s/s"
    assert throttled > 0  # its quota held it back, not the host


def test_cpu_cores_0_runs_only_on_cpu_0(daemon: RunningDaemon) -> None:
    if os.cpu_count() == 1:
        pytest.skip("a single-CPU host cannot tell a cpuset from no cpuset")
    status, out = run_sh(daemon.jobs(), "grep Cpus_allowed_list /proc/self/status", cpuCores="0")
    assert status.status == "COMPLETED"
    assert out.split() == ["Cpus_allowed_list:", "0"]


def test_allocating_past_max_memory_fails_out_of_memory(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    script = "x = b'1' * (200 << 20); print('survived', len(x))"
    job_id = run(stub, "python3", "-c", script, maxMemory=50)
    status = wait_status(stub, job_id, FINAL, timeout=30)
    assert (status.status, status.endReason, status.exitCode) == ("FAILED", "out of memory", 137)
    assert "survived" not in logs(stub, job_id)


_BOMB = """
import os, time
while True:  # {marker}
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
"""


def _limit_hits(pids_dir: Path) -> int:
    """How often a fork failed on the group's pids.max ("max N" in pids.events)."""
    return int((pids_dir / "pids.events").read_text().split()[1])


def _peak_marked(marker: str, seconds: float) -> int:
    """The most processes with `marker` in their argv seen at once, wherever
    they are (the rest of the host's processes are none of this test's business)."""
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, sum(marker in cmdline(p) for p in host_pids()))
        time.sleep(0.05)
    return peak


def test_fork_bomb_stays_inside_its_pids_limit(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    marker = f"bomb-{uuid.uuid4().hex[:8]}"
    job_id = run(stub, "python3", "-c", _BOMB.format(marker=marker), maxCpu=50)
    pids_dir = job_group(daemon, "pids", job_id)
    try:
        wait_status(stub, job_id, {"RUNNING"})
        wait_for(lambda: _limit_hits(pids_dir) > 10, 15, "the bomb to hit its pids limit")
        bomb_peak = _peak_marked(marker, 1.0)
        assert int((pids_dir / "pids.current").read_text()) <= MAX_PIDS
        # Every bomb process, in whatever cgroup, counts; unlimited it would reach pid_max.
        assert bomb_peak <= MAX_PIDS
    finally:
        stopped = stub.StopJob(pb.StopJobReq(uuid=job_id))
    assert stopped.status == "STOPPED"
    wait_gone(job_groups(cgroup_parent(daemon)))
    assert not [p for p in host_pids() if marker in cmdline(p)]


def test_max_iobps_throttles_direct_reads(daemon: RunningDaemon) -> None:
    script = (
        "dd if=/dev/urandom of=/work/f bs=1M count=8 2>/dev/null && sync && "
        "dd if=/work/f of=/dev/null iflag=direct bs=64k"
    )
    status, out = run_sh(daemon.jobs(), script, timeout=40, maxIobps=1 << 20)
    assert status.status == "COMPLETED", out
    match = DD_RATE.search(out)
    assert match, out
    copied, seconds = int(match[1]), float(match[2])
    assert copied == 8 << 20
    rate = copied / seconds / (1 << 20)
    assert 0.8 <= rate <= 1.2, f"{rate:.2f} MiB/s"
