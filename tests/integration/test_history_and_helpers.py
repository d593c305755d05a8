"""Log history through persist, log options, and the daemon's helpers failing."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import RunningDaemon, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}


def run(stub: pb_grpc.JobServiceStub, command: str, *args: str, **fields: object) -> str:
    return str(stub.RunJob(pb.RunJobRequest(command=command, args=list(args), **fields)).jobUuid)


def logs(stub: pb_grpc.JobServiceStub, job_id: str, **options: object) -> bytes:
    request = pb.GetJobLogsReq(uuid=job_id, **options)  # type: ignore[arg-type]
    return b"".join(c.payload for c in stub.GetJobLogs(request))


def _wait_for(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _helper_pid(daemon: RunningDaemon, name: str) -> int:
    return int((daemon.root / "run" / f"{name}.pid").read_text())


def test_finished_log_served_from_persist_with_options(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = run(stub, "sh", "-c", "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done")
    wait_status(stub, job_id, FINAL)
    local = daemon.root / "jobs" / job_id / "output.log"
    _wait_for(lambda: not local.exists())  # handed over to persist
    assert (daemon.root / "logs" / job_id).is_dir()
    everything = logs(stub, job_id)
    assert sorted(everything.splitlines()) == sorted(
        [f"out{i}".encode() for i in range(1, 6)] + [f"err{i}".encode() for i in range(1, 6)]
    )
    assert logs(stub, job_id, stream="stderr") == b"".join(
        f"err{i}\n".encode() for i in range(1, 6)
    )
    assert logs(stub, job_id, stream="stdout", tail=2) == b"out4\nout5\n"
    assert logs(stub, job_id, since="1h") == everything
    assert logs(stub, job_id, since="2999-01-01T00:00:00Z") == b""


def test_running_log_options(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = run(stub, "sh", "-c", "seq 1 5; sleep 30")
    _wait_for(lambda: logs(stub, job_id, noFollow=True) == b"1\n2\n3\n4\n5\n")
    assert logs(stub, job_id, noFollow=True, tail=2) == b"4\n5\n"
    stub.StopJob(pb.StopJobReq(uuid=job_id))


def test_rnx_log_flags(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = run(stub, "sh", "-c", "echo a; echo b >&2; echo c")
    wait_status(stub, job_id, FINAL)
    res = daemon.rnx("job", "log", "--stream", "stdout", "--tail", "1", job_id)
    assert (res.returncode, res.stdout) == (0, b"c\n")


def test_persist_killed_while_job_prints_loses_nothing(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = run(stub, "sh", "-c", "for i in $(seq 1 60); do echo line$i; sleep 0.05; done")
    time.sleep(0.8)
    os.kill(_helper_pid(daemon, "persist"), signal.SIGKILL)
    wait_status(stub, job_id, FINAL, timeout=30)
    expected = b"".join(f"line{i}\n".encode() for i in range(1, 61))
    assert logs(stub, job_id) == expected
    local = daemon.root / "jobs" / job_id / "output.log"
    _wait_for(lambda: not local.exists(), timeout=30)  # the restarted helper has it all
    assert logs(stub, job_id) == expected


def test_state_killed_while_jobs_start_and_end(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon()
    stub = daemon.jobs()
    first = [run(stub, "sh", "-c", f"exit {i % 3}") for i in range(6)]
    os.kill(_helper_pid(daemon, "state"), signal.SIGKILL)
    second = [run(stub, "sh", "-c", f"exit {i % 3}") for i in range(6)]
    for job_id in first + second:
        wait_status(stub, job_id, FINAL)
    _wait_for(lambda: _helper_pid(daemon, "state") > 0 and _state_log_mentions(daemon.root))
    time.sleep(1.5)  # the client replays what the dead helper had not acknowledged
    daemon.stop_daemon_only()
    daemon.restart()
    stub = daemon.jobs()
    for i, job_id in enumerate(first + second):
        status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
        assert (status.status, status.exitCode) == (
            "COMPLETED" if i % 3 == 0 else "FAILED",
            i % 3,
        )


def _state_log_mentions(root: Path) -> bool:
    return "serving" in (root / "run" / "state.log").read_text()
