"""Log history through persist, log options, and the daemon's helpers failing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import RunningDaemon, stored_record, wait_status

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
    # Halfway it waits for the test, which kills persist before letting it go on.
    halfway = "[ $i = 30 ] && until [ -e /work/go-on ]; do sleep 0.05; done"
    job_id = run(stub, "sh", "-c", f"for i in $(seq 1 60); do echo line$i; {halfway}; done")
    _wait_for(lambda: b"line30\n" in logs(stub, job_id, noFollow=True), timeout=30)
    os.kill(_helper_pid(daemon, "persist"), signal.SIGKILL)
    (daemon.workspace(job_id) / "go-on").touch()
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
    # The client replays what the dead helper had not acknowledged.
    _wait_for(
        lambda: all(stored_record(daemon, j)["status"] in FINAL for j in first + second),
        timeout=30,
    )
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


def _with_persist_settings(
    make_daemon: Callable[..., RunningDaemon], **persist: object
) -> RunningDaemon:
    """A daemon of its own, stopped, its config given these persist settings;
    the caller prepares the root and restarts it."""
    daemon = make_daemon()
    daemon.stop_daemon_only()
    raw = yaml.safe_load(daemon.config_path.read_text())
    raw.setdefault("persist", {}).update(persist)
    daemon.config_path.write_text(yaml.safe_dump(raw))
    return daemon


def test_corrupt_segment_in_the_middle_of_a_log(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = _with_persist_settings(make_daemon, segmentSize="16KB")
    daemon.restart()
    stub = daemon.jobs()
    # output in pauses: the daemon sends it in several batches, so that the
    # history has several segments
    script = "for i in 0 1 2 3 4 5 6 7; do seq $((i*5000+1)) $((i*5000+5000)); sleep 0.1; done"
    job_id = run(stub, "sh", "-c", script)
    wait_status(stub, job_id, FINAL)
    _wait_for(lambda: not (daemon.root / "jobs" / job_id / "output.log").exists())
    expected = b"".join(b"%d\n" % i for i in range(1, 40001))
    assert logs(stub, job_id) == expected
    segments = sorted((daemon.root / "logs" / job_id).glob("seg-*"))
    assert len(segments) >= 5
    middle = segments[len(segments) // 2]
    damaged = bytearray(middle.read_bytes())
    for i in range(40, len(damaged) - 20, 7):
        damaged[i] ^= 0x5A
    middle.write_bytes(bytes(damaged))
    persist_pid = _helper_pid(daemon, "persist")

    served = logs(stub, job_id)
    # one gap where the damaged segment was, everything around it intact
    kept = next(i for i, (a, b) in enumerate(zip(served, expected, strict=False)) if a != b)
    assert 0 < kept < len(served) < len(expected)
    assert expected.endswith(served[kept:])
    assert logs(stub, job_id, tail=2) == b"39999\n40000\n"
    helper_log = (daemon.root / "run" / "persist.log").read_text()
    assert "damaged segment" in helper_log and middle.name in helper_log
    assert _helper_pid(daemon, "persist") == persist_pid  # no crash, no restart


def test_persist_disk_full(make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = _with_persist_settings(make_daemon)
    history = daemon.root / "logs"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(history)], check=True)
    try:
        ballast = history / "ballast"
        ballast.write_bytes(os.urandom(900 * 1024))
        daemon.restart()
        stub = daemon.jobs()
        persist_pid = _helper_pid(daemon, "persist")
        job_id = run(stub, "head", "-c", "600000", "/dev/urandom")  # more than is free
        wait_status(stub, job_id, FINAL)
        _wait_for(lambda: "disk full" in daemon.log_path.read_text())
        output = logs(stub, job_id)  # still served, from the daemon's own copy
        assert len(output) == 600_000
        assert "disk full" in (daemon.root / "run" / "persist.log").read_text()
        assert _helper_pid(daemon, "persist") == persist_pid  # no crash loop
        ballast.unlink()  # room again: the buffered log reaches persist
        local = daemon.root / "jobs" / job_id / "output.log"
        _wait_for(lambda: not local.exists(), timeout=40)
        assert logs(stub, job_id) == output
        assert _helper_pid(daemon, "persist") == persist_pid
    finally:
        subprocess.run(["umount", "-l", str(history)], check=True)
