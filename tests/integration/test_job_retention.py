"""joblet.jobRetention against a real daemon: finished jobs are collected by
age and by count; running, scheduled and queued jobs and the jobs of an
unfinished workflow never are; a finished workflow goes with its jobs; a
collected job's history stays readable from persist and its id is answered
NOT_FOUND with when it went, across a restart too."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from integration.conftest import RunningDaemon, stored_record, wait_status
from integration.jobs_support import logs
from integration.workflow_support import run_workflow, wait_job, wait_workflow
from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
OPEN_WORKFLOW = """
jobs:
  quick: {command: "true"}
  slow: {command: sleep, args: ["60"], requires: [{quick: COMPLETED}]}
"""
DONE_WORKFLOW = """
jobs:
  one: {command: echo, args: [wf-one]}
  two: {command: echo, args: [wf-two], requires: [{one: COMPLETED}]}
"""


def finished(stub: pb_grpc.JobServiceStub, *args: str) -> str:
    job_id = stub.RunJob(pb.RunJobRequest(command=args[0], args=list(args[1:]))).jobUuid
    wait_status(stub, job_id, FINAL)
    return str(job_id)


def collected_error(stub: pb_grpc.JobServiceStub, job_id: str) -> grpc.RpcError | None:
    try:
        stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
    except grpc.RpcError as exc:
        return exc
    return None


def wait_collected(stub: pb_grpc.JobServiceStub, job_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while (error := collected_error(stub, job_id)) is None:
        assert time.monotonic() < deadline, f"job {job_id} was never collected"
        time.sleep(0.1)
    assert error.code() is grpc.StatusCode.NOT_FOUND
    return str(error.details())


def listed(stub: pb_grpc.JobServiceStub) -> dict[str, str]:
    return {job.uuid: job.status for job in stub.ListJobs(pb.EmptyRequest()).jobs}


def keepers(stub: pb_grpc.JobServiceStub) -> dict[str, str]:
    """A running job, a scheduled one, and an unfinished workflow (one job
    done, one running): none of them may ever be collected."""
    running = stub.RunJob(pb.RunJobRequest(command="sleep", args=["60"])).jobUuid
    scheduled = stub.RunJob(pb.RunJobRequest(command="true", schedule="1h")).jobUuid
    flow = run_workflow(stub, OPEN_WORKFLOW)
    quick = wait_job(stub, flow, "quick", {"COMPLETED"}).jobUuid
    slow = wait_job(stub, flow, "slow", {"RUNNING"}).jobUuid
    wait_status(stub, running, {"RUNNING"})
    return {
        "running": running,
        "scheduled": scheduled,
        "workflow": flow,
        "wf-quick": quick,
        "wf-slow": slow,
    }


def check_kept(stub: pb_grpc.JobServiceStub, kept: dict[str, str]) -> None:
    jobs = listed(stub)
    assert jobs[kept["running"]] == "RUNNING"
    assert jobs[kept["scheduled"]] == "SCHEDULED"
    assert jobs[kept["wf-quick"]] == "COMPLETED"  # done, but its workflow is not
    assert jobs[kept["wf-slow"]] == "RUNNING"
    flow = stub.GetWorkflowStatus(pb.GetWorkflowStatusRequest(workflowUuid=kept["workflow"]))
    assert flow.workflow.status == "RUNNING"


def test_finished_jobs_past_the_age_are_collected_and_their_history_stays(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon(jobRetention={"maxAge": "2s", "maxJobs": 0, "interval": "0.3s"})
    stub = daemon.jobs()
    kept = keepers(stub)
    old = finished(stub, "echo", "collected-output")
    job_dir = daemon.root / "jobs" / old
    flow = run_workflow(stub, DONE_WORKFLOW)
    assert wait_workflow(stub, flow).workflow.status == "COMPLETED"
    flow_jobs = [
        j.jobUuid for j in stub.GetWorkflowJobs(pb.GetWorkflowJobsRequest(workflowUuid=flow)).jobs
    ]
    message = wait_collected(stub, old)
    assert message.startswith(f"job {old} was collected at ")
    assert "its history is kept until " in message
    assert old not in listed(stub)
    assert not job_dir.exists()
    assert stored_record(daemon, old)["status"] is None
    # persist keeps what it printed, served by id
    assert logs(stub, old) == b"collected-output\n"
    # A finished workflow goes whole, its record too.
    for job_id in flow_jobs:
        wait_collected(stub, job_id)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetWorkflowStatus(pb.GetWorkflowStatusRequest(workflowUuid=flow))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert logs(stub, flow_jobs[1]) == b"wf-two\n"
    time.sleep(3)  # well past maxAge, several sweeps
    check_kept(stub, kept)
    # The answer for a collected id survives a restart.
    daemon.kill9()
    daemon.restart()
    stub = daemon.jobs()
    assert wait_collected(stub, old, timeout=5) == message
    assert logs(stub, old) == b"collected-output\n"
    assert old not in listed(stub)


def test_over_the_count_the_oldest_finished_jobs_go(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon(jobRetention={"maxAge": 0, "maxJobs": 3, "interval": "0.3s"})
    stub = daemon.jobs()
    kept = keepers(stub)  # its finished workflow job counts as one of the 3
    ids = [finished(stub, "echo", str(n)) for n in range(5)]
    for job_id in ids[:3]:
        wait_collected(stub, job_id)
    time.sleep(1.5)  # several more sweeps: the newest two stay
    jobs = listed(stub)
    assert [job_id in jobs for job_id in ids] == [False, False, False, True, True]
    check_kept(stub, kept)
    assert logs(stub, ids[0]) == b"0\n"
