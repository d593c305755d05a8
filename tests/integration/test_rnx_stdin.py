"""`rnx run -i` feeds the job's stdin through a real daemon; without -i,
piped input is not read and rnx says so once."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import RunningDaemon, wait_status


def _rnx(daemon: RunningDaemon, stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    return subprocess.run([*cmd, *args], input=stdin, capture_output=True, timeout=60, check=False)


def test_stdin_reaches_the_job_and_eof_closes_it(daemon: RunningDaemon) -> None:
    res = _rnx(daemon, b"hello\n", "run", "-i", "cat")
    assert (res.returncode, res.stdout) == (0, b"hello\n"), res.stderr
    counted = _rnx(daemon, b"a\nb\nc\n", "run", "-i", "wc", "-l")
    assert counted.stdout.strip() == b"3", counted.stderr  # wc ends only at EOF


def test_large_input_goes_through_whole(daemon: RunningDaemon) -> None:
    data = bytes(range(256)) * 4096 * 4  # 4 MiB: more than a pipe holds
    res = _rnx(daemon, data, "run", "-i", "sha256sum")
    import hashlib

    assert res.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest(), res.stderr


def test_piped_input_without_i_warns_once(daemon: RunningDaemon) -> None:
    res = _rnx(daemon, b"ignored\n", "run", "-f", "cat")
    assert res.returncode == 0
    assert res.stdout == b""  # the job's stdin is /dev/null
    assert res.stderr.count(b"rnx run -i") == 1, res.stderr


def test_a_job_without_stdin_refuses_it(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job = stub.RunJob(pb.RunJobRequest(command="sleep", args=["30"]))
    try:
        with pytest.raises(grpc.RpcError) as caught:
            stub.WriteJobStdin(iter([pb.StdinChunk(jobUuid=job.jobUuid, data=b"x")]), timeout=10)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "not started with stdin" in str(caught.value.details())
    finally:
        stub.StopJob(pb.StopJobReq(uuid=job.jobUuid))
        wait_status(stub, job.jobUuid, {"STOPPED", "FAILED", "COMPLETED"})


def test_a_viewer_may_not_write_stdin(daemon: RunningDaemon) -> None:
    stub = daemon.jobs("viewer")
    with pytest.raises(grpc.RpcError) as caught:
        stub.WriteJobStdin(iter([pb.StdinChunk(jobUuid="x", data=b"x")]), timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
