"""An oversized RunJob request through a real daemon: refused, nothing else hurt."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = pytest.mark.integration


def test_oversized_environment_is_invalid_argument_and_jobs_still_run(
    daemon: RunningDaemon,
) -> None:
    stub = daemon.jobs()
    env = {f"V{n}": "x" * 120_000 for n in range(9)}
    with pytest.raises(grpc.RpcError) as info:
        stub.RunJob(pb.RunJobRequest(command="true", environment=env), timeout=30)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "environment: 1,048,576 bytes max, got 1,080,027" in str(info.value.details())
    assert not stub.ListJobs(pb.EmptyRequest()).jobs
    res = daemon.rnx("run", "-f", "-e", f"BIG={'y' * 100_000}", "sh", "-c", 'echo "${#BIG}"')
    assert (res.returncode, res.stdout) == (0, b"100000\n"), res.stderr
    job = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", "exit 3"]))
    assert wait_status(stub, job.jobUuid, {"FAILED", "COMPLETED"}).exitCode == 3


def test_upload_path_with_dotdot_is_refused(daemon: RunningDaemon) -> None:
    upload = pb.FileUpload(path="a/../../escape", content=b"x")
    with pytest.raises(grpc.RpcError) as info:
        daemon.jobs().RunJob(pb.RunJobRequest(command="true", uploads=[upload]), timeout=30)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert not (daemon.root / "escape").exists() and not (daemon.root / "jobs" / "escape").exists()


@pytest.mark.parametrize(
    ("method", "request_message"),
    [
        ("GetJobStatus", pb.GetJobStatusReq(uuid="x" * 1_000_000)),
        ("DeleteJob", pb.DeleteJobReq(uuid="y" * 1_000_000)),
        ("GetJobMetricsHistory", pb.JobMetricsHistoryRequest(uuid="z" * 1_000_000)),
    ],
)
def test_an_error_about_a_huge_field_still_reaches_the_caller(
    daemon: RunningDaemon, method: str, request_message: Any
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        getattr(daemon.jobs(), method)(request_message, timeout=30)
    error = info.value
    assert isinstance(error, grpc.Call)
    assert error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), error
    assert "more characters" in str(error.details())
