"""Submission throughput: RunJob calls accepted per second from 50 concurrent
callers over mTLS.

    .venv/bin/python bench/submit_throughput.py [--quick]

Jobs are scheduled an hour ahead (schedule="1h") so only acceptance is
measured: 10,000 jobs (--quick: 1,000) from 50 asyncio callers on grpc.aio
channels, then ListJobs must hold every one of them (none lost). Baseline:
the same number of GetJobStatus calls (a trivial RPC) from the same callers,
the ceiling of this transport and client on this machine.
Target: >= 1,500 RunJob/s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import psutil
from common import Daemon, Report, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

CALLERS = 50
CHANNELS = 5  # callers share a few HTTP/2 connections, as a client pool would

Call = Callable[[pb_grpc.JobServiceStub], Awaitable[object]]


async def _caller(stub: pb_grpc.JobServiceStub, call: Call, left: list[int]) -> None:
    while left[0] > 0:
        left[0] -= 1
        await call(stub)


async def rate(daemon: Daemon, call: Call, total: int) -> tuple[float, float]:
    """Calls per second of `total` calls spread over CALLERS concurrent callers,
    and the daemon's CPU time per call in ms."""
    channels = [daemon.aio_channel() for _ in range(CHANNELS)]
    try:
        stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        for stub in stubs:  # connect and handshake before the clock starts
            await stub.ListJobs(pb.EmptyRequest())
        left = [total]
        cpu_before, start = daemon_cpu(daemon), time.perf_counter()
        await asyncio.gather(*(_caller(stubs[i % CHANNELS], call, left) for i in range(CALLERS)))
        elapsed, cpu = time.perf_counter() - start, daemon_cpu(daemon) - cpu_before
        return total / elapsed, cpu / total * 1e3
    finally:
        for channel in channels:
            await channel.close(None)


def daemon_cpu(daemon: Daemon) -> float:
    times = psutil.Process(daemon.proc.pid).cpu_times()
    return float(times.user + times.system)


def submit(stub: pb_grpc.JobServiceStub) -> Awaitable[object]:
    return stub.RunJob(pb.RunJobRequest(command="true", schedule="1h"))  # type: ignore[no-any-return]


Rate = tuple[float, float]


async def run(daemon: Daemon, total: int) -> tuple[Rate, Rate, int]:
    submitted = await rate(daemon, submit, total)
    async with daemon.aio_channel() as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        listed = await stub.ListJobs(pb.EmptyRequest())
    scheduled = sum(1 for job in listed.jobs if job.status == "SCHEDULED")
    one = pb.GetJobStatusReq(uuid=listed.jobs[0].uuid)

    def status(stub: pb_grpc.JobServiceStub) -> Awaitable[object]:
        return stub.GetJobStatus(one)  # type: ignore[no-any-return]

    return submitted, await rate(daemon, status, total), scheduled


def main() -> None:
    args = parse_args(__doc__ or "")
    total = 1_000 if args.quick else 10_000
    report = Report("submit_throughput", args.quick)
    with running_daemon() as daemon:
        (submitted, cpu), (baseline, base_cpu), scheduled = asyncio.run(run(daemon, total))
    print(f"RunJob: {submitted:.0f}/s; GetJobStatus: {baseline:.0f}/s; listed {scheduled}/{total}")
    report.figures = {
        "runjob_per_s": submitted,
        "daemon_cpu_ms_per_runjob": cpu,
        "jobs_listed": scheduled,
        "runjob_vs_trivial_rpc": submitted / baseline,
    }
    report.baselines = {"getjobstatus_per_s": baseline, "daemon_cpu_ms_per_status": base_cpu}
    report.check("throughput", submitted >= 1500, ">= 1,500 RunJob/s")
    report.check("none lost", scheduled == total, f"ListJobs holds all {total}")
    report.emit()


if __name__ == "__main__":
    main()
