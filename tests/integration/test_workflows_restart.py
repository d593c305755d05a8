"""Workflows survive a daemon killed with SIGKILL: the restarted daemon
rebuilds each one from its jobs' statuses and goes on; no job runs twice."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable

import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import RunningDaemon, wait_status
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

LONG = os.environ.get("JOBLET_CHAOS_LONG") == "1"


def test_killed_while_the_middle_job_runs(make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon()
    stub = daemon.jobs()
    text = """
name: a-b-c
jobs:
  A: {command: echo, args: [a-ran]}
  B: {command: sh, args: ["-c", "echo b-ran; sleep 3"], requires: [{A: COMPLETED}]}
  C: {command: echo, args: [c-ran], requires: [{B: COMPLETED}]}
"""
    workflow_id = run_workflow(stub, text)
    wait_job(stub, workflow_id, "B", {"RUNNING"})
    daemon.kill9()
    daemon.restart()
    stub = daemon.jobs()
    res = wait_workflow(stub, workflow_id)
    assert res.workflow.status == "COMPLETED"
    jobs = jobs_by_name(stub, workflow_id)
    assert job_log(stub, jobs["B"].jobUuid) == b"b-ran\n"  # re-attached, not re-run
    assert job_log(stub, jobs["C"].jobUuid) == b"c-ran\n"
    assert ts(jobs["C"].startTime) >= ts(jobs["B"].endTime) - 0.01


def test_killed_as_the_first_job_ends(make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon()
    stub = daemon.jobs()
    text = """
name: a-b
jobs:
  A: {command: sh, args: ["-c", "sleep 1; echo a-ran"]}
  B: {command: echo, args: [b-ran], requires: [{A: COMPLETED}]}
"""
    workflow_id = run_workflow(stub, text)
    wait_job(stub, workflow_id, "A", {"COMPLETED", "FAILED"}, timeout=30)
    daemon.kill9()
    daemon.restart()
    stub = daemon.jobs()
    res = wait_workflow(stub, workflow_id)
    assert res.workflow.status == "COMPLETED"
    jobs = jobs_by_name(stub, workflow_id)
    assert job_log(stub, jobs["B"].jobUuid) == b"b-ran\n"


def _random_dag(count: int, seed: int) -> str:
    """`count` jobs, each requiring up to 3 earlier ones; each prints a line
    of its own and takes a little while."""
    rng = random.Random(seed)
    lines = ["name: chaos", "jobs:"]
    for i in range(count):
        name = f"j{i:03d}"
        nap = rng.choice(["0.1", "0.3", "0.5"])
        requires = sorted(rng.sample(range(i), min(i, rng.randint(0, 3))))
        line = f'  {name}: {{command: sh, args: ["-c", "echo once-{name}; sleep {nap}"]'
        if requires:
            items = ", ".join(f"{{j{r:03d}: COMPLETED}}" for r in requires)
            line += f", requires: [{items}]"
        lines.append(line + "}")
    return "\n".join(lines) + "\n"


@pytest.mark.chaos
def test_every_job_runs_exactly_once_across_daemon_kills(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    count, kills = (200, 10) if LONG else (40, 3)
    daemon = make_daemon()
    stub = daemon.jobs()
    workflow_id = run_workflow(stub, _random_dag(count, seed=count))
    rng = random.Random(7)
    killed = 0
    for _ in range(kills):
        time.sleep(rng.uniform(0.2, 1.0))
        if status(stub, workflow_id).workflow.status != "RUNNING":
            break
        daemon.kill9()
        killed += 1
        daemon.restart()
        stub = daemon.jobs()
    assert killed >= 1, "the workflow ended before the first kill: make its jobs longer"
    res = wait_workflow(stub, workflow_id, timeout=60 + count)
    jobs = jobs_by_name(stub, workflow_id)
    seen: Counter[str] = Counter()
    for job in jobs.values():
        seen.update(job_log(stub, job.jobUuid).decode().split())
    assert max(seen.values()) == 1  # nothing ran twice
    # The launcher outlives every kill, so even a job whose start met one
    # (stored as starting, never launched) runs after the restart, once.
    for name, job in jobs.items():
        assert (job.status, seen[f"once-{name}"]) == ("COMPLETED", 1), (name, job.endReason)
    assert res.workflow.status == "COMPLETED"


def test_a_job_waiting_on_requirements_survives_a_kill(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon()
    stub = daemon.jobs()
    first = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", "sleep 2"])).jobUuid
    wait_status(stub, first, {"RUNNING"})
    requirement = pb.JobRequirement(jobUuid=first, status="COMPLETED")
    after = stub.RunJob(
        pb.RunJobRequest(command="echo", args=["after"], requirements=[requirement])
    ).jobUuid
    daemon.kill9()  # right after the answer: the daemon said it has the job
    daemon.restart()
    stub = daemon.jobs()
    still = stub.GetJobStatus(pb.GetJobStatusReq(uuid=after)).status
    assert still not in ("FAILED", "CANCELED")
    done = wait_status(stub, after, {"COMPLETED", "FAILED", "CANCELED"})
    assert done.status == "COMPLETED"
    assert job_log(stub, after) == b"after\n"


def test_a_job_added_to_a_workflow_survives_a_kill(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon()
    stub = daemon.jobs()
    workflow_id = run_workflow(
        stub, 'name: grow\njobs:\n  A: {command: sh, args: ["-c", "sleep 2"]}\n'
    )
    request = pb.RunJobRequest(
        name="extra", command="echo", args=["extra"], workflowUuid=workflow_id,
        requirements=[pb.JobRequirement(expression="A=COMPLETED")],
    )  # fmt: skip
    wait_job(stub, workflow_id, "A", {"RUNNING"})
    stub.RunJob(request)
    daemon.kill9()  # right after the answer
    daemon.restart()
    stub = daemon.jobs()
    res = wait_workflow(stub, workflow_id)
    assert res.workflow.status == "COMPLETED" and res.workflow.totalJobs == 2
    jobs = jobs_by_name(stub, workflow_id)
    assert list(jobs["extra"].dependencies) == ["A"]
    assert job_log(stub, jobs["extra"].jobUuid) == b"extra\n"


def test_a_workflow_killed_right_after_its_answer_is_still_known(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon()
    stub = daemon.jobs()
    workflow_id = run_workflow(
        stub, 'name: quick\njobs:\n  A: {command: echo, args: [a]}\n'
        '  B: {command: echo, args: [b], requires: [{A: COMPLETED}]}\n'
    )  # fmt: skip
    daemon.kill9()
    daemon.restart()
    stub = daemon.jobs()
    res = wait_workflow(stub, workflow_id)
    assert res.workflow.totalJobs == 2
    jobs = jobs_by_name(stub, workflow_id)
    assert set(jobs) == {"A", "B"}
    # A may have been lost between its start's record and its launch; never run twice.
    if res.workflow.status == "COMPLETED":
        assert job_log(stub, jobs["B"].jobUuid) == b"b\n"
