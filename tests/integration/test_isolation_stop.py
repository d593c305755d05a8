"""Stopping and cleaning up jobs, surviving the daemon's death, and the host-side
memory cost of running jobs (stop, hardening, memory)."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import ROOT_NEEDED, RunningDaemon, wait_status
from .test_isolation_support import (
    FINAL,
    cgroup_parent,
    cmdline,
    host_pids,
    job_groups,
    job_pids,
    launcher_pid,
    rss_kib,
    run,
    start_isolation_daemon,
    status_field,
    stop_isolation_daemon,
    wait_for,
    wait_gone,
)

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

RSS_BUDGET_KIB = 2048  # host-side overhead allowed per running job


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_isolation_daemon(
        tmp_path_factory.mktemp("stop"), joblet={"stopGracePeriod": "1s"}
    )
    yield running
    stop_isolation_daemon(running)


@pytest.fixture
def own_daemon(tmp_path: Path) -> Iterator[RunningDaemon]:
    """A daemon for one test, e.g. one the test kills."""
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_isolation_daemon(tmp_path)
    yield running
    stop_isolation_daemon(running)


def _survivors(marker: str) -> list[int]:
    return [pid for pid in host_pids() if marker in cmdline(pid)]


def test_double_forked_setsid_processes_do_not_survive_stop(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    seconds = str(random.randint(10**6, 10**7))  # an argv no other process has
    script = (
        f"(setsid sh -c 'trap \"\" TERM; exec sleep {seconds}' &); "
        f"(setsid sh -c 'sleep {seconds} & sleep {seconds}' &); exec sleep 300"
    )
    job_id = run(stub, "sh", "-c", script)
    wait_status(stub, job_id, {"RUNNING"})
    wait_for(lambda: len(_survivors(f"sleep {seconds}")) >= 3, 30, "the detached sleeps")
    assert stub.StopJob(pb.StopJobReq(uuid=job_id)).status == "STOPPED"
    assert _survivors(f"sleep {seconds}") == []
    wait_gone(job_groups(cgroup_parent(daemon)))


def _run_to_end(daemon: RunningDaemon, _: int) -> tuple[str, str]:
    stub = daemon.jobs()
    job_id = run(stub, "true")
    return job_id, str(wait_status(stub, job_id, FINAL, timeout=60).status)


def test_no_leftover_cgroup_mount_or_root_after_100_jobs(daemon: RunningDaemon) -> None:
    with ThreadPoolExecutor(8) as pool:
        ended = list(pool.map(lambda i: _run_to_end(daemon, i), range(100)))
    assert {status for _, status in ended} == {"COMPLETED"}
    parent = cgroup_parent(daemon)
    wait_for(lambda: not job_groups(parent), 30, "job cgroups to be removed")
    jobs_dir = f"{daemon.root / 'jobs'}/"
    mount_points = [
        line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
    ]
    assert not [m for m in mount_points if m.startswith(jobs_dir)]
    assert not [j for j, _ in ended if (daemon.root / "jobs" / j / "root").exists()]


def test_jobs_outlive_a_killed_daemon(own_daemon: RunningDaemon) -> None:
    stub = own_daemon.jobs()
    job_id = run(stub, "sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done")
    wait_status(stub, job_id, {"RUNNING"})
    log = own_daemon.root / "jobs" / job_id / "output.log"
    wait_for(lambda: log.stat().st_size > 0, 30, "the first output")
    launcher = launcher_pid(own_daemon)
    assert os.getpgid(launcher) != os.getpgid(own_daemon.proc.pid)  # not killed with it
    own_daemon.proc.send_signal(signal.SIGKILL)
    own_daemon.proc.wait(30)
    # Output written after the daemon's death: the job outlived it (and had
    # the time to die with it, had it been going to).
    size = log.stat().st_size
    wait_for(lambda: log.stat().st_size > size, 30, "the output to keep growing")
    assert status_field(launcher, "State")[:1] in ("S", "R")
    # The job's init lives on (its `sleep` children come and go).
    (init,) = _init_pids(own_daemon, [job_id])
    assert status_field(init, "State")[:1] in ("S", "R")


def _init_pids(daemon: RunningDaemon, job_ids: list[str]) -> list[int]:
    inits = []
    for job_id in job_ids:
        pids = job_pids(daemon, job_id)
        inits += [p for p in pids if status_field(p, "NSpid").split()[-1:] == ["1"]]
    return inits


def test_host_side_rss_per_running_job(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    _run_to_end(daemon, 0)  # the launcher's first job warms it up
    launcher = launcher_pid(daemon)
    before = rss_kib(launcher)
    job_ids = [run(stub, "sleep", "60") for _ in range(50)]
    try:
        for job_id in job_ids:
            wait_status(stub, job_id, {"RUNNING"})
        inits = _init_pids(daemon, job_ids)
        assert len(inits) == 50
        growth = rss_kib(launcher) - before
        per_job = (sum(rss_kib(p) for p in inits) + max(growth, 0)) / 50
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda j: stub.StopJob(pb.StopJobReq(uuid=j)), job_ids))
    assert per_job <= RSS_BUDGET_KIB, f"{per_job:.0f} KiB per job (launcher +{growth} KiB)"
