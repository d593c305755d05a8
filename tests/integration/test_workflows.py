"""Workflows on a real daemon: requirements evaluated server-side, PENDING
jobs, stop, cancel cascades, masking, uploads, roles."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import grpc
import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import RunningDaemon
from .workflow_support import (
    job_log,
    jobs_by_name,
    run_workflow,
    status,
    ts,
    wait_job,
    wait_workflow,
)

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

# Jobs that wait run until the test releases them: never for a fixed time.
HOLD = "until [ -e /tmp/never ]; do sleep 0.05; done"


def test_a_chain_runs_in_order_and_each_job_has_a_record_at_once(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    text = """
name: chain
jobs:
  first: {command: sh, args: ["-c", "sleep 0.5; echo one"]}
  second: {command: echo, args: [two], requires: [{first: COMPLETED}]}
  third: {command: echo, args: [three], requires: [{second: COMPLETED}]}
"""
    workflow_id = run_workflow(stub, text)
    jobs = jobs_by_name(stub, workflow_id)
    assert list(jobs) == ["first", "second", "third"]
    assert list(jobs["third"].dependencies) == ["second"]
    # PENDING with a real uuid: status, log and listing work before it runs.
    third = stub.GetJobStatus(pb.GetJobStatusReq(uuid=jobs["third"].jobUuid))
    assert third.status == "PENDING"
    assert third.workflowUuid == workflow_id
    assert job_log(stub, jobs["third"].jobUuid) == b""
    listed = {j.uuid: j.status for j in stub.ListJobs(pb.EmptyRequest()).jobs}
    assert listed[jobs["third"].jobUuid] == "PENDING"

    res = wait_workflow(stub, workflow_id)
    assert res.workflow.status == "COMPLETED"
    assert res.workflow.name == "chain"
    assert res.workflow.completedJobs == res.workflow.totalJobs == 3
    jobs = jobs_by_name(stub, workflow_id)
    assert ts(jobs["second"].startTime) >= ts(jobs["first"].endTime) - 0.01
    assert ts(jobs["third"].startTime) >= ts(jobs["second"].endTime) - 0.01
    assert job_log(stub, jobs["third"].jobUuid) == b"three\n"
    # A unique prefix works as well as the uuid.
    assert status(stub, workflow_id[:13]).workflow.uuid == workflow_id
    # A finished workflow has nothing to stop, and stays COMPLETED.
    with pytest.raises(grpc.RpcError) as info:
        stub.StopWorkflow(pb.StopWorkflowRequest(workflowUuid=workflow_id))
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert status(stub, workflow_id).workflow.status == "COMPLETED"


def test_fan_out_and_fan_in(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    text = """
name: fan
jobs:
  root: {command: "true"}
  b1: {command: sh, args: ["-c", "sleep 0.3"], requires: [{root: COMPLETED}]}
  b2: {command: sh, args: ["-c", "sleep 0.6"], requires: [{root: COMPLETED}]}
  b3: {command: "true", requires: [{root: COMPLETED}]}
  join: {command: "true", requires: ["b1=COMPLETED AND b2=COMPLETED AND b3=COMPLETED"]}
"""
    workflow_id = run_workflow(stub, text)
    assert wait_workflow(stub, workflow_id).workflow.status == "COMPLETED"
    jobs = jobs_by_name(stub, workflow_id)
    assert next(iter(jobs)) == "root" and list(jobs)[-1] == "join"
    assert sorted(jobs["join"].dependencies) == ["b1", "b2", "b3"]
    last = max(ts(jobs[n].endTime) for n in ("b1", "b2", "b3"))
    assert ts(jobs["join"].startTime) >= last - 0.01


def test_or_not_in_and_finished_are_evaluated_by_the_server(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    text = """
name: logic
jobs:
  good: {command: "true"}
  bad: {command: "false"}
  either: {command: echo, args: [either], requires: ["good=COMPLETED OR bad=COMPLETED"]}
  negated: {command: echo, args: [negated], requires: ["NOT bad=COMPLETED"]}
  member: {command: echo, args: [member], requires: ["bad IN (FAILED, STOPPED)"]}
  styled:
    command: echo
    args: [styled]
    requires: [{expression: "good=COMPLETED AND bad!=COMPLETED"}]
  anyway: {command: echo, args: [anyway], requires: [{bad: FINISHED}]}
  never: {command: echo, args: [never], requires: [{good: FAILED}]}
"""
    workflow_id = run_workflow(stub, text)
    wait_workflow(stub, workflow_id)
    jobs = jobs_by_name(stub, workflow_id)
    for name in ("either", "negated", "member", "styled", "anyway"):
        assert jobs[name].status == "COMPLETED", (name, jobs[name].endReason)
        assert job_log(stub, jobs[name].jobUuid) == f"{name}\n".encode()
    assert jobs["bad"].status == "FAILED"
    assert jobs["never"].status == "CANCELED"
    assert "good" in jobs["never"].endReason and "COMPLETED" in jobs["never"].endReason
    assert job_log(stub, jobs["never"].jobUuid) == b""


def test_an_invalid_workflow_lists_every_problem_and_creates_nothing(
    daemon: RunningDaemon,
) -> None:
    stub = daemon.jobs()
    jobs_before = len(stub.ListJobs(pb.EmptyRequest()).jobs)
    flows_before = len(stub.ListWorkflows(pb.ListWorkflowsRequest(includeCompleted=True)).workflows)
    text = """
name: broken
jobs:
  t-a: {command: "true", volumes: [no-such-volume]}
  load: {command: "true", requires: [{t-c: COMPLETED}]}
  x: {command: "true", requires: [{y: COMPLETED}]}
  y: {command: "true", requires: [{x: COMPLETED}]}
  up: {command: "true", uploads: {files: [missing.sh]}}
"""
    with pytest.raises(grpc.RpcError) as info:
        run_workflow(stub, text)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    message = info.value.details() or ""
    for needle in ('"t-c"', "no-such-volume", "missing.sh", "x"):
        assert needle in message, (needle, message)
    assert "line " in message
    assert len(stub.ListJobs(pb.EmptyRequest()).jobs) == jobs_before
    listed = stub.ListWorkflows(pb.ListWorkflowsRequest(includeCompleted=True)).workflows
    assert len(listed) == flows_before


def test_run_workflow_needs_the_yaml_itself(daemon: RunningDaemon) -> None:
    with pytest.raises(grpc.RpcError) as info:
        daemon.jobs().RunWorkflow(pb.RunWorkflowRequest(workflow="/etc/passwd"))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "yamlContent" in (info.value.details() or "")


def test_stop_workflow_stops_running_jobs_and_cancels_pending_ones(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    text = f"""
name: stoppable
jobs:
  long: {{command: sh, args: ["-c", "{HOLD}"]}}
  after: {{command: echo, args: [late], requires: [{{long: FINISHED}}]}}
"""
    workflow_id = run_workflow(stub, text)
    wait_job(stub, workflow_id, "long", {"RUNNING"})
    res = stub.StopWorkflow(pb.StopWorkflowRequest(workflowUuid=workflow_id))
    assert res.stoppedJobs == 1 and res.canceledJobs >= 1
    final = wait_workflow(stub, workflow_id)
    assert final.workflow.status == "STOPPED"
    jobs = jobs_by_name(stub, workflow_id)
    assert jobs["long"].status == "STOPPED"
    assert jobs["after"].status == "CANCELED"
    time.sleep(0.5)  # "after" accepts STOPPED: a stopped workflow must still not start it
    assert jobs_by_name(stub, workflow_id)["after"].status == "CANCELED"

    assert job_log(stub, jobs["after"].jobUuid) == b""


def test_canceling_a_pending_job_cascades(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    text = f"""
name: cascade
jobs:
  head: {{command: sh, args: ["-c", "{HOLD}"]}}
  mid: {{command: "true", requires: [{{head: COMPLETED}}]}}
  tail: {{command: "true", requires: [{{mid: COMPLETED}}]}}
  cleanup: {{command: echo, args: [cleanup], requires: [{{mid: FINISHED}}]}}
"""
    workflow_id = run_workflow(stub, text)
    jobs = jobs_by_name(stub, workflow_id)
    stub.CancelJob(pb.CancelJobReq(uuid=jobs["mid"].jobUuid))
    tail = wait_job(stub, workflow_id, "tail", {"CANCELED", "COMPLETED", "FAILED"})
    assert tail.status == "CANCELED"
    assert "mid" in tail.endReason
    cleanup = wait_job(stub, workflow_id, "cleanup", {"COMPLETED", "FAILED", "CANCELED"})
    assert cleanup.status == "COMPLETED"
    assert jobs_by_name(stub, workflow_id)["head"].status == "RUNNING"
    # Its jobs cannot be deleted while it runs; DeleteAllJobs leaves them.
    with pytest.raises(grpc.RpcError) as info:
        stub.DeleteJob(pb.DeleteJobReq(uuid=tail.jobUuid))
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    stub.DeleteAllJobs(pb.DeleteAllJobsReq())
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=tail.jobUuid)).status == "CANCELED"
    with pytest.raises(grpc.RpcError) as info:
        stub.DeleteWorkflow(pb.DeleteWorkflowRequest(workflowUuid=workflow_id))
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    stub.StopWorkflow(pb.StopWorkflowRequest(workflowUuid=workflow_id))
    wait_workflow(stub, workflow_id)
    deleted = stub.DeleteWorkflow(pb.DeleteWorkflowRequest(workflowUuid=workflow_id))
    assert deleted.deletedJobs == 4
    with pytest.raises(grpc.RpcError) as info:
        stub.GetJobStatus(pb.GetJobStatusReq(uuid=tail.jobUuid))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        status(stub, workflow_id)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_secrets_are_masked_in_the_yaml_served(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    text = """
name: secretive
environment: {STAGE: prod, API_TOKEN: tok-visible-nowhere}
secret_environment: {DB_PASSWORD: hunter2-secret}
jobs:
  show: {command: sh, args: ["-c", "echo ${#DB_PASSWORD} $STAGE"]}
"""
    workflow_id = run_workflow(stub, text)
    res = wait_workflow(stub, workflow_id)
    served = res.workflow.yamlContent
    assert "hunter2-secret" not in served and "tok-visible-nowhere" not in served
    assert "***" in served and "STAGE: prod" in served
    listed = stub.ListWorkflows(pb.ListWorkflowsRequest(includeCompleted=True)).workflows
    assert all("hunter2-secret" not in w.yamlContent for w in listed)
    job = jobs_by_name(stub, workflow_id)["show"]
    assert job_log(stub, job.jobUuid) == b"14 prod\n"  # the job got the real value


def test_uploads_reach_only_their_jobs(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    text = """
name: uploads
jobs:
  left: {command: sh, args: ["-c", "ls -R /work | sort"], uploads: {files: [left.sh, data]}}
  right: {command: sh, args: ["-c", "ls -R /work | sort"], uploads: {files: [right.sh]}}
"""
    files = [
        pb.FileUpload(path="left.sh", content=b"echo left\n", mode=0o755),
        pb.FileUpload(path="right.sh", content=b"echo right\n", mode=0o755),
        pb.FileUpload(path="data", mode=0o755, isDirectory=True),
        pb.FileUpload(path="data/rows.csv", content=b"1,2\n", mode=0o644),
    ]
    workflow_id = run_workflow(stub, text, files)
    assert wait_workflow(stub, workflow_id).workflow.status == "COMPLETED"
    jobs = jobs_by_name(stub, workflow_id)
    left = job_log(stub, jobs["left"].jobUuid).decode()
    right = job_log(stub, jobs["right"].jobUuid).decode()
    assert "left.sh" in left and "rows.csv" in left and "right.sh" not in left
    assert "right.sh" in right and "left.sh" not in right and "rows.csv" not in right


def test_viewers_only_read(daemon: RunningDaemon) -> None:
    admin, viewer = daemon.jobs(), daemon.jobs("viewer")
    text = """
name: watched
jobs:
  a: {command: sh, args: ["-c", "sleep 0.3"]}
  b: {command: "true", requires: [{a: COMPLETED}]}
"""
    with pytest.raises(grpc.RpcError) as info:
        run_workflow(viewer, text)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    workflow_id = run_workflow(admin, text)
    seen = [
        m.workflow.status
        for m in viewer.WatchWorkflow(pb.GetWorkflowStatusRequest(workflowUuid=workflow_id))
    ]
    assert seen[-1] == "COMPLETED" and len(seen) >= 2
    assert status(viewer, workflow_id).workflow.status == "COMPLETED"
    assert len(jobs_by_name(viewer, workflow_id)) == 2
    listed = viewer.ListWorkflows(pb.ListWorkflowsRequest(includeCompleted=True)).workflows
    assert workflow_id in {w.uuid for w in listed}
    running = viewer.ListWorkflows(pb.ListWorkflowsRequest()).workflows
    assert workflow_id not in {w.uuid for w in running}
    for call, request in (
        (viewer.StopWorkflow, pb.StopWorkflowRequest(workflowUuid=workflow_id)),
        (viewer.DeleteWorkflow, pb.DeleteWorkflowRequest(workflowUuid=workflow_id)),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call(request)
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    audit = (daemon.root / "logs" / "audit.log").read_text()
    assert "/joblet.JobService/RunWorkflow" in audit
    assert '"rpc":"/joblet.JobService/StopWorkflow"' in audit


def test_run_job_adds_a_job_to_an_unfinished_workflow(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    text = """
name: growing
jobs:
  first: {command: sh, args: ["-c", "sleep 1"]}
"""
    workflow_id = run_workflow(stub, text)
    first = jobs_by_name(stub, workflow_id)["first"]
    by_name = pb.JobRequirement(expression="first=COMPLETED")
    by_id = pb.JobRequirement(jobUuid=first.jobUuid, status="FINISHED")
    for name, requirement in (("extra", by_name), ("other", by_id)):
        request = pb.RunJobRequest(
            name=name, command="echo", args=[name], workflowUuid=workflow_id,
            requirements=[requirement],
        )  # fmt: skip
        assert stub.RunJob(request).status == "PENDING"
    with pytest.raises(grpc.RpcError) as info:
        stub.RunJob(
            pb.RunJobRequest(
                name="third", command="true", workflowUuid=workflow_id,
                requirements=[pb.JobRequirement(expression="nope=COMPLETED")],
            )
        )  # fmt: skip
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    res = wait_workflow(stub, workflow_id)
    assert res.workflow.status == "COMPLETED"
    assert res.workflow.totalJobs == 3
    jobs = jobs_by_name(stub, workflow_id)
    assert list(jobs["extra"].dependencies) == ["first"]
    assert ts(jobs["extra"].startTime) >= ts(jobs["first"].endTime) - 0.01
    assert job_log(stub, jobs["other"].jobUuid) == b"other\n"
    with pytest.raises(grpc.RpcError) as info:
        stub.RunJob(pb.RunJobRequest(name="late", command="true", workflowUuid=workflow_id))
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION


V109_SCRIPT = '''
text = """
version: "3.0"
name: reference-style
jobs:
  fetch: {command: echo, args: [fetched]}
  report:
    command: echo
    args: [report]
    requires:
      - expression: "fetch=COMPLETED"
"""
request = pb.RunWorkflowRequest(
    workflow="reference-style.yaml", totalJobs=2, jobOrder=["fetch", "report"],
    yamlContent=text,
)
workflow_id = stub.RunWorkflow(request).workflowUuid
deadline = time.monotonic() + 60
while True:
    res = stub.GetWorkflowStatus(pb.GetWorkflowStatusRequest(workflowUuid=workflow_id))
    if res.workflow.status in ("COMPLETED", "FAILED", "CANCELED", "STOPPED"):
        break
    assert time.monotonic() < deadline, res.workflow.status
    time.sleep(0.05)
jobs = stub.GetWorkflowJobs(pb.GetWorkflowJobsRequest(workflowUuid=workflow_id)).jobs
listed = stub.ListWorkflows(pb.ListWorkflowsRequest(includeCompleted=True)).workflows
result = {
    "status": res.workflow.status,
    "counts": [res.workflow.totalJobs, res.workflow.completedJobs],
    "jobs": [[j.jobName, list(j.dependencies)] for j in jobs],
    "listed": workflow_id in {w.uuid for w in listed},
}
'''


def test_a_v109_client_runs_and_reads_a_workflow(
    daemon: RunningDaemon, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Through a client generated from the v1.0.9 contract alone, as the
    reference's client sends it (its name, job order and count beside the YAML)."""
    from .proto109 import compile_client, run_client

    tmp = compile_client(tmp_path_factory.mktemp("proto109"))
    result = run_client(tmp, daemon.node(), daemon.port, V109_SCRIPT)
    assert result == {
        "status": "COMPLETED",
        "counts": [2, 2],
        "jobs": [["fetch", []], ["report", ["fetch"]]],
        "listed": True,
    }


def test_released_jobs_take_the_normal_path_through_the_queue(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    """Jobs released together wait as QUEUED for joblet.maxConcurrentJobs."""
    daemon = make_daemon(maxConcurrentJobs=1)
    stub = daemon.jobs()
    text = """
name: queued
jobs:
  root: {command: "true"}
  a: {command: sh, args: ["-c", "sleep 0.3"], requires: [{root: COMPLETED}]}
  b: {command: sh, args: ["-c", "sleep 0.3"], requires: [{root: COMPLETED}]}
  c: {command: sh, args: ["-c", "sleep 0.3"], requires: [{root: COMPLETED}]}
"""
    workflow_id = run_workflow(stub, text)
    assert wait_workflow(stub, workflow_id).workflow.status == "COMPLETED"
    jobs = jobs_by_name(stub, workflow_id)
    spans = sorted((ts(jobs[n].startTime), ts(jobs[n].endTime)) for n in "abc")
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 0.01  # one at a time
