"""Jobs survive a daemon crash: kill -9 the daemon, start it again, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable

import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import RunningDaemon, wait_status
from .jobs_support import COUNTER, FINAL, counter_output, logs, run

pytestmark = [pytest.mark.integration, pytest.mark.privileged]


def test_kill9_daemon_then_restart_keeps_every_job(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon(maxConcurrentJobs=3)
    stub = daemon.jobs()
    finished = [run(stub, "sh", "-c", f"echo done-{i}; exit {i}") for i in range(4)]
    for job_id in finished:
        wait_status(stub, job_id, FINAL)
    running = [run(stub, "sh", "-c", COUNTER.format(n=80)) for _ in range(2)]
    blocker = run(stub, "sleep", "3")
    queued = run(stub, "sh", "-c", "echo queued-ran >> /work/count; cat /work/count")
    scheduled = run(stub, "echo", "scheduled-ran", schedule="2s")
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=queued)).status == "QUEUED"
    time.sleep(0.5)

    daemon.kill9()
    time.sleep(1.0)
    daemon.restart()
    stub = daemon.jobs()

    for i, job_id in enumerate(finished):
        status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
        assert status.status == ("COMPLETED" if i == 0 else "FAILED")
        assert status.exitCode == i
        assert logs(stub, job_id) == f"done-{i}\n".encode()
    for job_id in running:
        assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status == "RUNNING"
    for job_id in running:
        status = wait_status(stub, job_id, FINAL, timeout=30)
        assert (status.status, status.exitCode) == ("FAILED", 5)
        assert logs(stub, job_id) == counter_output(80)  # no gap, no duplicate
    wait_status(stub, blocker, FINAL, timeout=30)
    assert wait_status(stub, queued, FINAL, timeout=30).status == "COMPLETED"
    assert logs(stub, queued) == b"queued-ran\n"  # ran exactly once
    assert wait_status(stub, scheduled, FINAL, timeout=30).status == "COMPLETED"
    assert logs(stub, scheduled) == b"scheduled-ran\n"


def test_daemon_and_launcher_killed_jobs_fail_clearly(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon()
    stub = daemon.jobs()
    job_id = run(stub, "sh", "-c", "while true; do echo tick; sleep 0.1; done")
    wait_status(stub, job_id, {"RUNNING"})
    time.sleep(0.3)
    launcher = daemon.launcher_pid()

    daemon.kill9()
    os.kill(launcher, signal.SIGKILL)
    time.sleep(0.5)
    daemon.restart()
    stub = daemon.jobs()

    status = wait_status(stub, job_id, FINAL, timeout=15)
    assert status.status == "FAILED"
    assert status.endReason.startswith("lost:"), status.endReason
    assert b"tick\n" in logs(stub, job_id)  # its output so far stays readable
    deadline = time.monotonic() + 10
    while _job_processes(job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _job_processes(job_id), "processes of the lost job are left on the host"


def _job_processes(job_id: str) -> list[int]:
    """Host pids whose cgroup path names the job."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cgroup") as f:
                if job_id in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def test_job_recorded_as_initializing_is_reattached_and_finishes(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    """The daemon died after the launch but before the state store heard that the
    job runs: after the restart it is RUNNING, and its real exit is recorded."""
    daemon = make_daemon()
    stub = daemon.jobs()
    job_id = run(stub, "sh", "-c", "sleep 3; echo finished; exit 3")
    wait_status(stub, job_id, {"RUNNING"})
    time.sleep(0.3)  # the RUNNING event reaches the store

    daemon.kill9()
    _wait_gone(f"state --config {daemon.config_path}")
    db = sqlite3.connect(daemon.root / "state" / "jobs.db")
    with db:
        (record,) = db.execute("SELECT record FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        data = json.loads(record)
        assert data["status"] == "RUNNING"
        data["status"] = "INITIALIZING"
        db.execute(
            "UPDATE jobs SET record = ? WHERE job_id = ?", (json.dumps(data).encode(), job_id)
        )
    db.close()
    daemon.restart()
    stub = daemon.jobs()

    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status == "RUNNING"
    status = wait_status(stub, job_id, FINAL, timeout=15)
    assert (status.status, status.exitCode) == ("FAILED", 3)
    assert logs(stub, job_id) == b"finished\n"


def _wait_gone(cmdline_part: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(cmdline_part in _cmdline(entry) for entry in os.listdir("/proc")):
            return
        time.sleep(0.05)
    raise AssertionError(f"a process running {cmdline_part!r} is still there")


def _cmdline(entry: str) -> str:
    if not entry.isdigit():
        return ""
    try:
        with open(f"/proc/{entry}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
