"""Driving workflows through a real daemon: run one from YAML text, wait
for it, read its jobs by name."""

from __future__ import annotations

import time
from collections.abc import Sequence

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

FINAL_WORKFLOW = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}


def run_workflow(
    stub: pb_grpc.JobServiceStub, text: str, files: Sequence[pb.FileUpload] = ()
) -> str:
    res = stub.RunWorkflow(pb.RunWorkflowRequest(yamlContent=text, workflowFiles=list(files)))
    return str(res.workflowUuid)


def status(stub: pb_grpc.JobServiceStub, workflow_id: str) -> pb.GetWorkflowStatusResponse:
    return stub.GetWorkflowStatus(pb.GetWorkflowStatusRequest(workflowUuid=workflow_id))


def jobs_by_name(stub: pb_grpc.JobServiceStub, workflow_id: str) -> dict[str, pb.WorkflowJob]:
    res = stub.GetWorkflowJobs(pb.GetWorkflowJobsRequest(workflowUuid=workflow_id))
    return {job.jobName: job for job in res.jobs}


def wait_workflow(
    stub: pb_grpc.JobServiceStub,
    workflow_id: str,
    timeout: float = 60,
    statuses: set[str] = FINAL_WORKFLOW,
) -> pb.GetWorkflowStatusResponse:
    deadline = time.monotonic() + timeout
    while True:
        res = status(stub, workflow_id)
        if res.workflow.status in statuses:
            return res
        if time.monotonic() > deadline:
            shown = {j.jobName: j.status for j in res.jobs}
            raise AssertionError(
                f"workflow {workflow_id} stayed {res.workflow.status} ({shown}), wanted {statuses}"
            )
        time.sleep(0.05)


def wait_job(
    stub: pb_grpc.JobServiceStub,
    workflow_id: str,
    name: str,
    statuses: set[str],
    timeout: float = 60,
) -> pb.WorkflowJob:
    deadline = time.monotonic() + timeout
    while True:
        job = jobs_by_name(stub, workflow_id)[name]
        if job.status in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {name} stayed {job.status}, wanted {statuses}")
        time.sleep(0.05)


def job_log(stub: pb_grpc.JobServiceStub, job_id: str) -> bytes:
    request = pb.GetJobLogsReq(uuid=job_id, noFollow=True)
    return b"".join(chunk.payload for chunk in stub.GetJobLogs(request))


def ts(stamp: pb.Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9
