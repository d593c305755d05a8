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
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import RunningDaemon, stored_record, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
# Jobs run until the test releases them (a file in their /work), never for a
# fixed time: a restart on a loaded host takes as long as it takes.
UNTIL_RELEASED = "until [ -e /work/release ]; do sleep 0.05; done"
# Prints 1, 2, 3, ... one line every 50 ms until released, then exits with 5.
COUNTER = "i=0; until [ -e /work/release ]; do i=$((i+1)); echo $i; sleep 0.05; done; exit 5"


def run(stub: pb_grpc.JobServiceStub, command: str, *args: str, **fields: object) -> str:
    return str(stub.RunJob(pb.RunJobRequest(command=command, args=list(args), **fields)).jobUuid)


def logs(stub: pb_grpc.JobServiceStub, job_id: str) -> bytes:
    return b"".join(c.payload for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id)))


def counter_output(n: int) -> bytes:
    return "".join(f"{i}\n" for i in range(1, n + 1)).encode()


def release(daemon: RunningDaemon, job_id: str) -> None:
    (daemon.workspace(job_id) / "release").touch()


def log_size(daemon: RunningDaemon, job_id: str) -> int:
    """Bytes the launcher has appended to the job's log (daemon up or not)."""
    return (daemon.root / "jobs" / job_id / "output.log").stat().st_size


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_log_grows(daemon: RunningDaemon, *job_ids: str) -> None:
    sizes = {job_id: log_size(daemon, job_id) for job_id in job_ids}
    for job_id, size in sizes.items():
        wait_for(lambda j=job_id, n=size: log_size(daemon, j) > n, f"more output of {job_id}")


def test_kill9_daemon_then_restart_keeps_every_job(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon(maxConcurrentJobs=3)
    stub = daemon.jobs()
    finished = [run(stub, "sh", "-c", f"echo done-{i}; exit {i}") for i in range(4)]
    for job_id in finished:
        wait_status(stub, job_id, FINAL)
    running = [run(stub, "sh", "-c", COUNTER) for _ in range(2)]
    blocker = run(stub, "sh", "-c", UNTIL_RELEASED)
    queued = run(stub, "sh", "-c", "echo queued-ran >> /work/count; cat /work/count")
    scheduled = run(stub, "echo", "scheduled-ran", schedule="2s")
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=queued)).status == "QUEUED"
    for job_id in (*running, blocker):
        wait_status(stub, job_id, {"RUNNING"})
    wait_log_grows(daemon, *running)

    daemon.kill9()
    wait_log_grows(daemon, *running)  # the jobs go on writing while no daemon runs
    daemon.restart()
    stub = daemon.jobs()

    for i, job_id in enumerate(finished):
        status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
        assert status.status == ("COMPLETED" if i == 0 else "FAILED")
        assert status.exitCode == i
        assert logs(stub, job_id) == f"done-{i}\n".encode()
    for job_id in (*running, blocker):
        assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status == "RUNNING"
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=queued)).status == "QUEUED"
    wait_log_grows(daemon, *running)  # re-attached: their log goes on
    for job_id in running:
        release(daemon, job_id)
    for job_id in running:
        status = wait_status(stub, job_id, FINAL, timeout=30)
        assert (status.status, status.exitCode) == ("FAILED", 5)
        out = logs(stub, job_id)
        assert out == counter_output(out.count(b"\n"))  # no gap, no duplicate
    release(daemon, blocker)
    assert wait_status(stub, blocker, FINAL, timeout=30).status == "COMPLETED"
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
    wait_for(lambda: log_size(daemon, job_id) > 0, "the first tick")
    launcher = daemon.launcher_pid()

    daemon.kill9()
    os.kill(launcher, signal.SIGKILL)
    wait_for(lambda: _gone(launcher), "the launcher's end")
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
    job_id = run(stub, "sh", "-c", f"{UNTIL_RELEASED}; echo finished; exit 3")
    wait_status(stub, job_id, {"RUNNING"})
    wait_for(lambda: stored_record(daemon, job_id)["status"] == "RUNNING", "RUNNING in the store")

    daemon.kill9()
    _wait_gone(f"state --config {daemon.config_path}")
    db = sqlite3.connect(daemon.root / "state" / "jobs.db")
    with db:
        data = stored_record(daemon, job_id)
        data["status"] = "INITIALIZING"
        db.execute(
            "UPDATE jobs SET record = ? WHERE job_id = ?", (json.dumps(data).encode(), job_id)
        )
    db.close()
    daemon.restart()
    stub = daemon.jobs()

    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status == "RUNNING"
    release(daemon, job_id)
    status = wait_status(stub, job_id, FINAL, timeout=15)
    assert (status.status, status.exitCode) == ("FAILED", 3)
    assert logs(stub, job_id) == b"finished\n"


@pytest.mark.parametrize("launcher", ["kept", "killed"])
def test_job_recorded_as_initializing_that_never_reached_the_launcher(
    make_daemon: Callable[..., RunningDaemon], launcher: str
) -> None:
    """The daemon died between storing a job as starting and the launch. The
    launcher that saw every launch does not know it, so it never ran: it runs
    now, once. A launcher that is new since then cannot tell: the job is
    settled as lost, never run a second time."""
    daemon = make_daemon()
    stub = daemon.jobs()
    job_id = run(stub, "echo", "ran-once", schedule="1h")
    wait_for(lambda: stored_record(daemon, job_id)["status"] == "SCHEDULED", "its record")
    launcher_pid = daemon.launcher_pid()

    daemon.kill9()
    _wait_gone(f"state --config {daemon.config_path}")
    if launcher == "killed":
        os.kill(launcher_pid, signal.SIGKILL)
        wait_for(lambda: _gone(launcher_pid), "the launcher's end")
    db = sqlite3.connect(daemon.root / "state" / "jobs.db")
    with db:
        data = stored_record(daemon, job_id)
        data["status"] = "INITIALIZING"
        db.execute(
            "UPDATE jobs SET record = ? WHERE job_id = ?", (json.dumps(data).encode(), job_id)
        )
    db.close()
    daemon.restart()
    stub = daemon.jobs()

    status = wait_status(stub, job_id, FINAL, timeout=15)
    if launcher == "kept":
        assert (status.status, status.exitCode) == ("COMPLETED", 0), status.endReason
        assert logs(stub, job_id) == b"ran-once\n"
    else:
        assert status.status == "FAILED"
        assert status.endReason.startswith("lost: the daemon restarted"), status.endReason
        assert logs(stub, job_id) == b""


def _gone(pid: int) -> bool:
    """True when `pid` no longer runs (absent, or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


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


def test_a_waiting_job_is_stored_before_it_is_answered(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    """A scheduled or queued job the daemon accepted is known after a kill -9
    that follows the answer at once (the answer waits for its record)."""
    daemon = make_daemon(maxConcurrentJobs=1)
    stub = daemon.jobs()
    blocker = run(stub, "sh", "-c", UNTIL_RELEASED)
    accepted = [run(stub, "true", schedule="1h") for _ in range(3)]
    accepted += [run(stub, "true") for _ in range(3)]  # queued behind the blocker
    daemon.kill9()
    daemon.restart()
    known = {job.uuid: job.status for job in daemon.jobs().ListJobs(pb.EmptyRequest()).jobs}
    assert all(job_id in known for job_id in accepted), (accepted, known)
    assert [known[j] for j in accepted] == ["SCHEDULED"] * 3 + ["QUEUED"] * 3
    (daemon.workspace(blocker) / "release").touch()
