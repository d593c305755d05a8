"""Submission throughput: RunJob calls accepted per second from 50 concurrent
callers over mTLS.

    .venv/bin/python bench/submit_throughput.py [--quick]

Jobs are scheduled an hour ahead (schedule="1h") so only acceptance is
measured: 10,000 jobs (--quick: 1,000) from 50 asyncio callers on grpc.aio
channels. Only calls answered SCHEDULED with a job id count as accepted, and
ListJobs must afterwards hold every accepted id (none lost). Baseline: the
same number of GetJobStatus calls (a trivial RPC) from the same callers, the
ceiling of this transport and client on this machine. Besides the rates it
prints the CPU each call cost the daemon, its state helper (which stores every
accepted job) and this client, as clients and daemon share the host's cores.
The same RunJob run is then repeated on a second daemon with the audit log
off (`audit.enabled: false`): the difference is what auditing costs. The
audited daemon's log must hold one RunJob line per accepted job.
Target: >= 1,500 RunJob/s, and RunJob >= 0.85 x GetJobStatus.
Last, finished jobs: a quarter as many `true` jobs (network none) from 32
callers, each submitting its next once the last one's log stream has ended,
against the same count of `unshare` (the job's namespaces and a network
namespace) running `true`, 32 at a time. Target: >= 300 jobs/s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import psutil
from common import Daemon, Report, parse_args, running_daemon, unshare_argv

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

CALLERS = 50
CHANNELS = 5  # callers share a few HTTP/2 connections, as a client pool would
SUBMIT = pb.RunJobRequest(command="true", schedule="1h")

# One call of a caller: returns the id of the job it created, or "" (status calls).
Call = Callable[[pb_grpc.JobServiceStub], Awaitable[str]]


@dataclass
class Rate:
    per_s: float
    daemon_ms: float  # CPU per call: the daemon
    state_ms: float  # ... its state helper
    client_ms: float  # ... this process (all 50 callers)


async def _caller(
    stub: pb_grpc.JobServiceStub, call: Call, left: list[int], ids: list[str]
) -> None:
    while left[0] > 0:
        left[0] -= 1
        ids.append(await call(stub))


async def rate(daemon: Daemon, call: Call, total: int) -> tuple[Rate, list[str]]:
    """`total` calls spread over CALLERS concurrent callers: their rate and
    CPU cost, and what each call returned."""
    channels = [daemon.aio_channel() for _ in range(CHANNELS)]
    try:
        stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        for stub in stubs:  # connect and handshake before the clock starts
            await stub.ListJobs(pb.EmptyRequest())
        left, ids = [total], list[str]()
        daemon_before, state_before = cpu_seconds(daemon)
        client_before, start = time.process_time(), time.perf_counter()
        await asyncio.gather(
            *(_caller(stubs[i % CHANNELS], call, left, ids) for i in range(CALLERS))
        )
        elapsed = time.perf_counter() - start
        client = time.process_time() - client_before
        daemon_after, state_after = cpu_seconds(daemon)
        ms = 1e3 / total
        measured = Rate(
            total / elapsed,
            (daemon_after - daemon_before) * ms,
            (state_after - state_before) * ms,
            client * ms,
        )
        return measured, ids
    finally:
        for channel in channels:
            await channel.close(None)


def cpu_seconds(daemon: Daemon) -> tuple[float, float]:
    """CPU seconds used so far by the daemon and by its state helper."""
    process = psutil.Process(daemon.proc.pid)
    helpers = [p for p in process.children() if "state" in p.cmdline()]
    return _cpu(process), sum(_cpu(p) for p in helpers)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def submit(stub: pb_grpc.JobServiceStub) -> str:
    reply = await stub.RunJob(SUBMIT)
    return reply.jobUuid if reply.status == "SCHEDULED" and reply.jobUuid else ""


async def run(daemon: Daemon, total: int) -> tuple[Rate, Rate, int, int]:
    """RunJob and GetJobStatus rates, how many RunJob calls were accepted, and
    how many of those accepted jobs ListJobs holds afterwards."""
    submitted, ids = await rate(daemon, submit, total)
    accepted = {job_id for job_id in ids if job_id}
    async with daemon.aio_channel() as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        listed = await stub.ListJobs(pb.EmptyRequest())
    held = {job.uuid for job in listed.jobs if job.status == "SCHEDULED"}
    one = pb.GetJobStatusReq(uuid=listed.jobs[0].uuid)

    async def status(stub: pb_grpc.JobServiceStub) -> str:
        await stub.GetJobStatus(one)
        return ""

    baseline, _ = await rate(daemon, status, total)
    return submitted, baseline, len(accepted), len(accepted & held)


FINISH_CALLERS = 32
FINISHED = pb.RunJobRequest(command="true", network="none")


async def finished_rate(daemon: Daemon, total: int) -> float:
    """`true` jobs (network none) finished per second: FINISH_CALLERS callers,
    each submitting its next job once the last one's log stream has ended."""
    channels = [daemon.aio_channel() for _ in range(CHANNELS)]
    try:
        stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        for stub in stubs:
            await stub.ListJobs(pb.EmptyRequest())
        left = [total]

        async def caller(stub: pb_grpc.JobServiceStub) -> None:
            while left[0] > 0:
                left[0] -= 1
                job = await stub.RunJob(FINISHED)
                async for _ in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid)):
                    pass

        start = time.perf_counter()
        await asyncio.gather(*(caller(stubs[i % CHANNELS]) for i in range(FINISH_CALLERS)))
        return total / (time.perf_counter() - start)
    finally:
        for channel in channels:
            await channel.close(None)


async def bare_unshare_rate(total: int) -> float:
    """The same namespaces by `unshare` running `true`, FINISH_CALLERS at a time."""
    argv = unshare_argv("true", extra_ns=["--net"])
    left = [total]

    async def caller() -> None:
        while left[0] > 0:
            left[0] -= 1
            proc = await asyncio.create_subprocess_exec(*argv)
            await proc.wait()

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(FINISH_CALLERS)))
    return total / (time.perf_counter() - start)


def audited_runjobs(daemon: Daemon) -> int:
    """RunJob lines in the daemon's audit log."""
    path = daemon.root / "logs" / "audit.log"
    with path.open() as lines:
        return sum(1 for line in lines if '"/joblet.JobService/RunJob"' in line)


def main() -> None:
    args = parse_args(__doc__ or "")
    total = 1_000 if args.quick else 10_000
    report = Report("submit_throughput", args.quick)
    with running_daemon() as daemon:
        submitted, baseline, accepted, listed = asyncio.run(run(daemon, total))
        audited = audited_runjobs(daemon)
    with running_daemon({"audit": {"enabled": False}}) as daemon:
        unaudited, _ = asyncio.run(rate(daemon, submit, total))
    finished_total = total // 4
    with running_daemon() as daemon:
        finished = asyncio.run(finished_rate(daemon, finished_total))
    bare = asyncio.run(bare_unshare_rate(finished_total))
    accepted_rate = submitted.per_s * accepted / total
    print(
        f"RunJob: {accepted_rate:.0f}/s accepted ({accepted}/{total}, {listed} listed);"
        f" GetJobStatus: {baseline.per_s:.0f}/s; RunJob without the audit log:"
        f" {unaudited.per_s:.0f}/s"
    )
    report.figures = {
        "runjob_per_s": accepted_rate,
        "daemon_cpu_ms_per_runjob": submitted.daemon_ms,
        "state_helper_cpu_ms_per_runjob": submitted.state_ms,
        "client_cpu_ms_per_runjob": submitted.client_ms,
        "jobs_accepted": accepted,
        "jobs_listed": listed,
        "runjob_vs_trivial_rpc": submitted.per_s / baseline.per_s,
        "audit_lines_for_runjob": audited,
        "true_jobs_finished_per_s": finished,
        "finished_vs_bare_unshare": finished / bare,
    }
    report.baselines = {
        "getjobstatus_per_s": baseline.per_s,
        "daemon_cpu_ms_per_status": baseline.daemon_ms,
        "client_cpu_ms_per_status": baseline.client_ms,
        "runjob_per_s_without_audit_log": unaudited.per_s,
        "daemon_cpu_ms_per_runjob_without_audit_log": unaudited.daemon_ms,
        "bare_unshare_true_per_s": bare,
    }
    report.check("throughput", accepted_rate >= 1500, ">= 1,500 RunJob/s")
    report.check(
        "none lost",
        accepted == total and listed == total,
        f"all {total} accepted and held by ListJobs",
    )
    report.check("audited", audited == accepted, "one audit line per accepted RunJob")
    report.check("submission ratio", submitted.per_s / baseline.per_s >= 0.85, ">= 0.85")
    report.check("finished", finished >= 300, ">= 300 true jobs/s (32 callers, network none)")
    report.emit()


if __name__ == "__main__":
    main()
