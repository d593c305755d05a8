"""The disk under the daemon's root fills up while jobs run: new jobs are
refused clearly, running jobs lose output (marked once) but not their relay,
and the state is whole again once there is room, after a restart too.

The daemon's root is a 64 MB tmpfs the test mounts and removes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from integration.conftest import ROOT_NEEDED, RunningDaemon, start_daemon, wait_status

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
# About 50 KB/s: a page's slack (which a full tmpfs still takes) fills at once.
TICKER = (
    'pad=$(printf %01000d 0); i=0; while true; do i=$((i+1)); echo "line-$i $pad"; sleep 0.02; done'
)
DROPPED = b"[joblet] output dropped: no space left on device"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(root)], check=True)
    try:
        running = start_daemon(tmp_path)
        try:
            yield running
        finally:
            running.stop()
    finally:
        if subprocess.run(["umount", str(root)], check=False).returncode:
            subprocess.run(["umount", "-l", str(root)], check=True)


def logs(stub: pb_grpc.JobServiceStub, job_id: str) -> bytes:
    request = pb.GetJobLogsReq(uuid=job_id, noFollow=True)
    return b"".join(c.payload for c in stub.GetJobLogs(request, timeout=30))


def _logs_or_none(stub: pb_grpc.JobServiceStub, job_id: str) -> bytes | None:
    try:
        return logs(stub, job_id)
    except grpc.RpcError as exc:
        if exc.code() is grpc.StatusCode.UNAVAILABLE:
            return None
        raise


def wait_for(predicate: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def fill(path: Path) -> None:
    """Write to `path` until the file system is full."""
    with open(path, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * (1 << 20))
    with open(path, "ab", buffering=0) as f, contextlib.suppress(OSError):
        while True:  # the last pages
            f.write(b"\0" * 4096)


def statuses(stub: pb_grpc.JobServiceStub) -> dict[str, tuple[str, int]]:
    return {j.uuid: (j.status, j.exitCode) for j in stub.ListJobs(pb.EmptyRequest()).jobs}


def test_full_disk_refuses_new_jobs_marks_dropped_output_and_recovers(
    daemon: RunningDaemon,
) -> None:
    stub = daemon.jobs()
    done = str(stub.RunJob(pb.RunJobRequest(command="echo", args=["before"])).jobUuid)
    ticker = str(stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", TICKER])).jobUuid)
    sleeper = str(stub.RunJob(pb.RunJobRequest(command="sleep", args=["300"])).jobUuid)
    wait_for(lambda: b"line-5 " in logs(stub, ticker), "the ticker's output")
    filler = daemon.root / "filler"

    fill(filler)
    with pytest.raises(grpc.RpcError) as refused:
        stub.RunJob(pb.RunJobRequest(command="echo", args=["no room"]))
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "no room for a new job" in str(refused.value.details())
    stub.StopJob(pb.StopJobReq(uuid=sleeper))  # a change the state store has no room for
    assert wait_status(stub, sleeper, FINAL).status == "STOPPED"
    time.sleep(1.0)  # the ticker prints on into a full disk
    assert wait_status(stub, ticker, {"RUNNING"}, timeout=1)  # and so does its relay
    filler.unlink()

    wait_for(
        lambda: logs(stub, ticker).partition(DROPPED)[2].count(b"\n") > 5, "output after the gap"
    )
    stub.StopJob(pb.StopJobReq(uuid=ticker))
    assert wait_status(stub, ticker, FINAL).status == "STOPPED"
    after = str(stub.RunJob(pb.RunJobRequest(command="echo", args=["after"])).jobUuid)
    assert wait_status(stub, after, FINAL).status == "COMPLETED"
    assert logs(stub, after) == b"after\n"

    text = logs(stub, ticker)
    assert text.count(DROPPED) == 1, text[-2000:]
    before_gap, _, after_gap = text.partition(DROPPED)
    numbers = [int(line.split()[0][5:]) for line in (before_gap + after_gap).split(b"\n")
               if line.startswith(b"line-")]  # fmt: skip
    assert numbers == sorted(numbers) and numbers[-1] - numbers[0] + 1 > len(numbers)  # a gap
    listed = statuses(stub)
    stored = {ticker: "STOPPED", sleeper: "STOPPED", after: "COMPLETED", done: "COMPLETED"}
    wait_for(lambda: _stored(daemon, stored) == stored, "the state store to catch up")

    daemon.kill9()
    daemon.restart()
    stub = daemon.jobs()
    again = statuses(stub)
    assert {j: again[j] for j in stored} == {j: listed[j] for j in stored}
    # Finished jobs' logs may be served by the persist helper, which comes up
    # beside the daemon: give it a moment after the restart.
    wait_for(lambda: _logs_or_none(stub, ticker) == text, "the ticker's log after the restart")
    assert logs(stub, done) == b"before\n"
    db = sqlite3.connect(daemon.root / "state" / "jobs.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()


def _stored(daemon: RunningDaemon, jobs: dict[str, str]) -> dict[str, str]:
    """Job id -> status of `jobs`, as the state helper's SQLite file holds them."""
    import json

    db = sqlite3.connect(f"file:{daemon.root / 'state' / 'jobs.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT job_id, record FROM jobs").fetchall()
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    return {job_id: json.loads(record)["status"] for job_id, record in rows if job_id in jobs}
