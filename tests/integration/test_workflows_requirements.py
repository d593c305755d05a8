"""RunJob with `requirements`: a standalone job waits (PENDING) until they
hold, like Slurm's --dependency, evaluated by the server."""

from __future__ import annotations

import grpc
import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import RunningDaemon, wait_status
from .workflow_support import job_log

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}


def _run(stub: object, command: str, *args: str, **fields: object) -> str:
    request = pb.RunJobRequest(command=command, args=list(args), **fields)  # type: ignore[arg-type]
    return str(stub.RunJob(request).jobUuid)  # type: ignore[attr-defined]


def _status(stub: object, job_id: str) -> pb.GetJobStatusRes:
    return stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))  # type: ignore[attr-defined, no-any-return]


def test_a_job_waits_for_its_requirements(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    first = _run(stub, "sh", "-c", "sleep 0.5; exit 3")
    ok = pb.JobRequirement(jobUuid=first, status="FAILED")
    after = _run(stub, "echo", "after", requirements=[ok])
    assert _status(stub, after).status == "PENDING"
    assert list(_status(stub, after).dependencies) == [first]
    never = _run(stub, "echo", "never", requirements=[pb.JobRequirement(jobUuid=first)])
    expression = f"{first[:13]}=COMPLETED OR {first} IN (FAILED)"
    either = _run(stub, "echo", "either", requirements=[pb.JobRequirement(expression=expression)])
    done = wait_status(stub, after, {"COMPLETED", "FAILED", "CANCELED"})
    assert done.status == "COMPLETED"
    assert job_log(stub, after) == b"after\n"
    ended = _status(stub, first)
    assert done.startTime >= ended.endTime
    assert wait_status(stub, either, FINAL).status == "COMPLETED"
    canceled = wait_status(stub, never, FINAL)
    assert canceled.status == "CANCELED"
    assert first in canceled.endReason and "FAILED" in canceled.endReason
    # A requirement already decided decides at once.
    late = _run(
        stub, "echo", "late", requirements=[pb.JobRequirement(jobUuid=first, status="FINISHED")]
    )
    assert wait_status(stub, late, FINAL).status == "COMPLETED"


def test_a_waiting_job_can_be_canceled_and_bad_requirements_are_refused(
    daemon: RunningDaemon,
) -> None:
    stub = daemon.jobs()
    hold = _run(stub, "sh", "-c", "until [ -e /tmp/never ]; do sleep 0.05; done")
    waiting = _run(stub, "true", requirements=[pb.JobRequirement(jobUuid=hold)])
    stub.CancelJob(pb.CancelJobReq(uuid=waiting))
    assert _status(stub, waiting).status == "CANCELED"
    for requirement, code in (
        (pb.JobRequirement(expression="deadbeef0=COMPLETED"), grpc.StatusCode.NOT_FOUND),
        # a job reference may be a name too: an unknown one is not found
        (pb.JobRequirement(expression="nosuchjob=COMPLETED"), grpc.StatusCode.NOT_FOUND),
        (pb.JobRequirement(expression=f"{hold}=COMPLETED AND"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.JobRequirement(expression=f"{hold}=DONE"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.JobRequirement(jobUuid="not-a-uuid"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.JobRequirement(), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.RpcError) as info:
            _run(stub, "true", requirements=[requirement])
        assert info.value.code() is code, info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        _run(stub, "true", schedule="1h", requirements=[pb.JobRequirement(jobUuid=hold)])
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    stub.StopJob(pb.StopJobReq(uuid=hold))
