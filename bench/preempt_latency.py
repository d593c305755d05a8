"""An urgent job's start when it must preempt a running job.

    .venv/bin/python bench/preempt_latency.py [--quick]

A daemon with joblet.maxConcurrentJobs: 1 and joblet.preemption: true. Each
trial starts a preemptible job (priority 0, onPreempt stop, stopGracePeriod
1s) that ignores SIGTERM, the worst case: it leaves only when killed at the
end of its grace period. Once it runs, the clock starts, an urgent `echo`
job (priority 10) is sent with RunJob and followed with GetJobLogs on the
same mTLS channel; the figure is the time until the urgent job's first output
byte. Baseline, same run, alternating with the trials: the same echo job on
the idle node (a free slot, nothing to preempt). TRIALS trials (--quick: 5);
p50 and p99.
Target: p99 <= the grace period + 50 ms.
"""

from __future__ import annotations

import time

from common import Report, p50, p99, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

TRIALS = 20
GRACE_S = 1.0
# Ignores SIGTERM (and so do its children): only the kill ends it.
STUBBORN = "trap '' TERM; echo ready; while true; do sleep 0.05; done"
DEADLINE_S = 30.0


def first_byte(stub: pb_grpc.JobServiceStub, **fields: object) -> float:
    """Seconds from RunJob until the new echo job's first output byte."""
    start = time.perf_counter()
    job_id = stub.RunJob(pb.RunJobRequest(command="echo", args=["urgent"], **fields)).jobUuid
    for chunk in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id), timeout=DEADLINE_S):
        if chunk.payload:
            return time.perf_counter() - start
    raise RuntimeError(f"job {job_id} printed nothing")


def wait_status(stub: pb_grpc.JobServiceStub, job_id: str, wanted: set[str]) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        status = str(stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status)
        if status in wanted:
            return status
        time.sleep(0.01)
    raise RuntimeError(f"job {job_id} never reached {wanted}")


def victim(stub: pb_grpc.JobServiceStub) -> str:
    request = pb.RunJobRequest(
        command="sh", args=["-c", STUBBORN], preemptible=True, onPreempt="stop",
        stopGracePeriod=f"{GRACE_S:g}s",
    )  # fmt: skip
    job_id = str(stub.RunJob(request).jobUuid)
    wait_status(stub, job_id, {"RUNNING"})
    for chunk in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id), timeout=DEADLINE_S):
        if b"ready" in chunk.payload:
            break
    return job_id


def measure(stub: pb_grpc.JobServiceStub, trials: int, report: Report) -> None:
    preempting: list[float] = []
    idle: list[float] = []
    for _ in range(trials):
        idle.append(first_byte(stub))
        taken = victim(stub)
        preempting.append(first_byte(stub, priority=10))
        final = wait_status(stub, taken, {"STOPPED", "FAILED", "COMPLETED"})
        if final != "STOPPED":
            raise RuntimeError(f"the preempted job ended {final}")
    report.figures.update({
        "preempt_first_byte_p50_s": p50(preempting),
        "preempt_first_byte_p99_s": p99(preempting),
        "over_grace_p50_ms": (p50(preempting) - GRACE_S) * 1000,
        "over_grace_p99_ms": (p99(preempting) - GRACE_S) * 1000,
    })  # fmt: skip
    report.baselines.update(
        {"idle_first_byte_p50_s": p50(idle), "idle_first_byte_p99_s": p99(idle)}
    )
    report.check(
        "preempt", p99(preempting) <= GRACE_S + 0.05, f"p99 <= grace ({GRACE_S:g} s) + 50 ms"
    )
    report.notes.append(f"{trials} trials; the preempted job ignores SIGTERM (killed at grace)")


def main() -> None:
    args = parse_args(__doc__ or "")
    trials = 5 if args.quick else TRIALS
    report = Report("preempt_latency", args.quick)
    with running_daemon(maxConcurrentJobs=1, preemption=True) as daemon:
        measure(daemon.jobs(), trials, report)
    report.emit()


if __name__ == "__main__":
    main()
