"""Workflows on a real daemon: what the executor adds to running jobs.

    .venv/bin/python bench/workflow_daemon.py [--quick]

- Overhead per job: 1,000 `true` jobs as a DAG (10 layers of 100, each job
  requiring 3 of the layer before) from RunWorkflow to the workflow's end,
  against the same 1,000 jobs as plain RunJobs (sent by 50 concurrent
  callers, waited for), same daemon, same run, the plain run before and
  after the DAG: (DAG wall - the lower plain wall) / 1,000 <= 2 ms.
- A 200-job chain of `true` (network none): each job's recorded end to its
  dependent's process start (the daemon's endTime and startTime): p50 <=
  20 ms, p99 <= 50 ms. Baseline, same run: plain RunJobs of `echo hi`,
  request sent -> first output byte (what any start costs).
- Fan-out 1 -> 100: the root's recorded end to the last dependent's start
  <= 1 s.
Every job runs with network none: a bridge job's address bookkeeping (a
state file written and fsynced per start and end) is the network's cost,
the same with or without workflows, and is measured by bench/job_start.py.
--quick divides the counts by 10 (the targets are then only indicative).
"""

from __future__ import annotations

import asyncio
import random
import time

from common import Report, describe_ms, p50, p99, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
CALLERS = 50
POLL_S = 0.25  # both runs' ends are seen this often: light on the daemon, same for both


def ts(stamp: pb.Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def dag_yaml(layers: int, width: int, fan_in: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    lines = ["name: dag", "jobs:"]
    for layer in range(layers):
        for i in range(width):
            line = f'  l{layer}j{i}: {{command: "true", network: none'
            if layer:
                picks = rng.sample(range(width), min(fan_in, width))
                items = ", ".join(f"{{l{layer - 1}j{p}: COMPLETED}}" for p in sorted(picks))
                line += f", requires: [{items}]"
            lines.append(line + "}")
    return "\n".join(lines) + "\n"


def chain_yaml(count: int) -> str:
    lines = ["name: chain", "jobs:", '  c0: {command: "true", network: none}']
    lines += [
        f'  c{i}: {{command: "true", network: none, requires: [{{c{i - 1}: COMPLETED}}]}}'
        for i in range(1, count)
    ]
    return "\n".join(lines) + "\n"


def fan_yaml(width: int) -> str:
    lines = ["name: fan", "jobs:", '  root: {command: "true", network: none}']
    lines += [
        f'  f{i}: {{command: "true", network: none, requires: [{{root: COMPLETED}}]}}'
        for i in range(width)
    ]
    return "\n".join(lines) + "\n"


def run_and_wait(stub: pb_grpc.JobServiceStub, text: str) -> tuple[float, str]:
    """Wall seconds from RunWorkflow to the workflow's end, its status read
    every POLL_S (as the plain run's jobs are)."""
    start = time.perf_counter()
    res = stub.RunWorkflow(pb.RunWorkflowRequest(yamlContent=text))
    request = pb.GetWorkflowStatusRequest(workflowUuid=res.workflowUuid)
    while (status := stub.GetWorkflowStatus(request).workflow.status) not in FINAL:
        time.sleep(POLL_S)
    wall = time.perf_counter() - start
    if status != "COMPLETED":
        raise SystemExit(f"workflow ended {status}")
    return wall, str(res.workflowUuid)


async def plain_jobs(channel_factory: object, count: int) -> float:
    """`count` RunJobs from CALLERS concurrent callers (as bench/submit_throughput.py),
    then each waited for (by its status)."""
    channel = channel_factory()  # type: ignore[operator]
    stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
    pending: set[str] = set()

    async def caller(calls: int) -> None:
        for _ in range(calls):
            reply = await stub.RunJob(pb.RunJobRequest(command="true", network="none"))
            pending.add(reply.jobUuid)

    start = time.perf_counter()
    share, extra = divmod(count, CALLERS)
    await asyncio.gather(*(caller(share + (i < extra)) for i in range(CALLERS)))
    while pending:
        listed = await stub.ListJobs(pb.EmptyRequest())
        pending -= {j.uuid for j in listed.jobs if j.status in FINAL}
        if pending:
            await asyncio.sleep(POLL_S)
    wall = time.perf_counter() - start
    await channel.close()
    return wall


def plain_starts(stub: pb_grpc.JobServiceStub, count: int) -> list[float]:
    """Sequential RunJobs of `echo hi` (network none): request sent -> first
    output byte at a follower (as bench/job_start.py). What any start costs,
    workflow or not (an upper bound: it includes the exec and the output)."""
    samples = []
    for _ in range(count):
        sent = time.perf_counter()
        job_id = stub.RunJob(pb.RunJobRequest(command="echo", args=["hi"], network="none")).jobUuid
        for _chunk in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id)):
            samples.append(time.perf_counter() - sent)
            break
    return samples


def gaps(stub: pb_grpc.JobServiceStub, workflow_id: str) -> dict[str, pb.WorkflowJob]:
    res = stub.GetWorkflowJobs(pb.GetWorkflowJobsRequest(workflowUuid=workflow_id))
    return {job.jobName: job for job in res.jobs}


def main() -> None:
    args = parse_args(__doc__ or "")
    scale = 10 if args.quick else 1
    width, chain_len, fan = 100 // scale, 200 // scale, 100 // scale
    total = 10 * width
    report = Report("workflow_daemon", args.quick)
    with running_daemon() as daemon:
        stub = daemon.jobs()
        run_and_wait(stub, chain_yaml(5))  # warm up: launcher spares, imports
        plain = asyncio.run(plain_jobs(daemon.aio_channel, total))
        dag, _ = run_and_wait(stub, dag_yaml(10, width, 3))
        plain_again = asyncio.run(plain_jobs(daemon.aio_channel, total))
        baseline = min(plain, plain_again)
        overhead = (dag - baseline) / total

        _, chain_id = run_and_wait(stub, chain_yaml(chain_len))
        jobs = gaps(stub, chain_id)
        latencies = [
            ts(jobs[f"c{i}"].startTime) - ts(jobs[f"c{i - 1}"].endTime) for i in range(1, chain_len)
        ]

        starts = plain_starts(stub, chain_len)

        _, fan_id = run_and_wait(stub, fan_yaml(fan))
        jobs = gaps(stub, fan_id)
        root_end = ts(jobs["root"].endTime)
        last_start = max(ts(jobs[f"f{i}"].startTime) for i in range(fan)) - root_end

    report.figures = {
        "dag_jobs": total,
        "dag_wall_s": dag,
        "overhead_per_job_ms": overhead * 1000,
        "chain_end_to_start_p50_ms": p50(latencies) * 1000,
        "chain_end_to_start_p99_ms": p99(latencies) * 1000,
        "fanout_last_start_s": last_start,
    }
    report.baselines = {
        "plain_runjobs_wall_s": baseline,
        "plain_runjob_to_first_byte_p50_ms": p50(starts) * 1000,
        "plain_runjob_to_first_byte_p99_ms": p99(starts) * 1000,
        # What starting `fan` jobs takes at the plain run's pace: the fan-out's floor.
        "plain_pace_for_fanout_s": baseline / total * fan,
    }
    report.notes.append(
        f"plain runs: {plain:.3f} s, {plain_again:.3f} s (the lower is the baseline)"
    )
    report.notes.append(f"chain end -> start: {describe_ms(latencies)}")
    report.check("overhead", overhead <= 0.002, "<= 2 ms per job over plain RunJobs")
    report.check("chain p50", p50(latencies) <= 0.020, "<= 20 ms")
    report.check("chain p99", p99(latencies) <= 0.050, "<= 50 ms")
    report.check("fan-out", last_start <= 1.0, f"1 -> {fan}: last start <= 1 s after")
    report.emit()


if __name__ == "__main__":
    main()
