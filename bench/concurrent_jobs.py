"""Many jobs at once: 2,000 `sleep` jobs with network none, then 1,000 on the
default bridge, each started, listed, followed, sampled and stopped.

    .venv/bin/python bench/concurrent_jobs.py [--quick] [--none N] [--bridge N]

(--quick: 200 and 100.) Each series submits its jobs from 16 callers (each
job prints one line, then sleeps), waits until every one is RUNNING in
ListJobPages, opens one GetJobLogs follower per job and waits for every
first line, cancels them, lets that settle (5 s), then leaves the node alone
for 3 metric intervals (5 s each)
and takes the CPU of the daemon and its persist helper over that window: the
per-job samplers' cost, sampling and storing (baseline: the same window on
the idle daemon, before the series). It then
checks every job has metric samples, stops them all (StopJob, 16 callers)
and waits until none runs and no job cgroup is left. Figures: RunJob p50/p99,
time until all run, the daemon's RSS with every job running against
50 MB + 10 MB per 100 jobs, the launcher's RSS and fds, the sampler's CPU
against 25 % of one core for 2,000 jobs, the stop time. Any RunJob error is
printed with its status and counted.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import psutil
from common import CGROUP_ROOT, Daemon, Report, p50, p99, require_root, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

CALLERS = 16
CHANNELS = 4
INTERVAL_S = 5.0
QUIET_INTERVALS = 3
SETTLE_S = 5.0
STOP_DEADLINE_S = 300.0
COMMAND = ("sh", "-c", "echo up; exec sleep 3600")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 and 100 jobs")
    parser.add_argument("--none", type=int, default=-1, help="jobs with network none")
    parser.add_argument("--bridge", type=int, default=-1, help="jobs on the bridge (0: none)")
    args = parser.parse_args()
    if args.none < 0:
        args.none = 200 if args.quick else 2000
    if args.bridge < 0:
        args.bridge = 100 if args.quick else 1000
    return args


async def fan_out(count: int, work: Callable[[int], Awaitable[None]]) -> None:
    """`work(i)` for i in range(count), CALLERS at a time."""
    left = iter(range(count))

    async def caller() -> None:
        for i in left:
            await work(i)

    await asyncio.gather(*(caller() for _ in range(CALLERS)))


class Series:
    def __init__(self, daemon: Daemon, stubs: list[pb_grpc.JobServiceStub], network: str) -> None:
        self.daemon, self.stubs, self.network = daemon, stubs, network
        self.ids: list[str] = []
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()

    def stub(self, i: int) -> pb_grpc.JobServiceStub:
        return self.stubs[i % len(self.stubs)]

    async def submit(self, count: int) -> None:
        request = pb.RunJobRequest(command=COMMAND[0], args=COMMAND[1:], network=self.network)

        async def one(i: int) -> None:
            began = time.perf_counter()
            try:
                job = await self.stub(i).RunJob(request, timeout=120)
            except grpc.aio.AioRpcError as exc:
                self.errors[f"{exc.code().name}: {exc.details()}"] += 1
                return
            self.latencies.append(time.perf_counter() - began)
            self.ids.append(job.jobUuid)

        await fan_out(count, one)

    async def running(self) -> int:
        request = pb.ListJobPagesRequest(statuses=["RUNNING"], pageSize=1000)
        pages = self.stubs[0].ListJobPages(request, timeout=120)
        return sum([len(page.jobs) async for page in pages])

    async def wait_running(self, deadline_s: float) -> float:
        began = time.monotonic()
        while (count := await self.running()) < len(self.ids):
            if time.monotonic() - began > deadline_s:
                raise AssertionError(f"{count} of {len(self.ids)} jobs running after {deadline_s}s")
            await asyncio.sleep(0.5)
        return time.monotonic() - began

    async def follow(self) -> tuple[int, float]:
        """One follower per job, all open at once: how many saw "up"."""
        seen = 0
        began = time.monotonic()
        calls = []

        async def one(i: int) -> None:
            nonlocal seen
            call = self.stub(i).GetJobLogs(pb.GetJobLogsReq(uuid=self.ids[i]))
            calls.append(call)
            async for chunk in call:
                if b"up" in chunk.payload:
                    seen += 1
                    return

        await asyncio.wait_for(fan_out(len(self.ids), one), 300)
        took = time.monotonic() - began
        for call in calls:
            call.cancel()
        return seen, took

    async def sampled(self) -> int:
        """Jobs with at least one metric sample in persist's history."""
        count = 0

        async def one(i: int) -> None:
            nonlocal count
            history = await self.stub(i).GetJobMetricsHistory(
                pb.JobMetricsHistoryRequest(uuid=self.ids[i]), timeout=60
            )
            count += bool(history.samples)

        await fan_out(len(self.ids), one)
        return count

    async def stop(self) -> float:
        began = time.monotonic()

        async def one(i: int) -> None:
            request = pb.StopJobReq(uuid=self.ids[i], grace_seconds=1)
            try:
                await self.stub(i).StopJob(request, timeout=120)
            except grpc.aio.AioRpcError as exc:
                self.errors[f"StopJob {exc.code().name}: {exc.details()}"] += 1

        await fan_out(len(self.ids), one)
        while await self.running():
            await asyncio.sleep(0.5)
        while left := job_cgroups(self.daemon.parent):
            if time.monotonic() - began > STOP_DEADLINE_S:
                raise AssertionError(f"{left} job cgroups left {STOP_DEADLINE_S:g}s after StopJob")
            await asyncio.sleep(0.5)
        return time.monotonic() - began


def job_cgroups(parent: str) -> int:
    """Job groups under the daemon's parent, in any hierarchy."""
    counts = [
        sum(1 for entry in (h / parent).iterdir() if entry.is_dir())
        for h in CGROUP_ROOT.iterdir()
        if (h / parent).is_dir()
    ]
    return max(counts, default=0)


def daemon_proc(daemon: Daemon) -> psutil.Process:
    return psutil.Process(daemon.proc.pid)


def rss_mb(proc: psutil.Process) -> float:
    return float(proc.memory_info().rss) / 2**20


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def quiet_cpu(proc: psutil.Process) -> tuple[float, float]:
    """The CPU of the daemon and of its persist helper (which stores every
    sample) over QUIET_INTERVALS metric intervals, as shares of one core."""
    persist = persist_proc(proc)
    before, helper, began = cpu_s(proc), cpu_s(persist), time.monotonic()
    await asyncio.sleep(QUIET_INTERVALS * INTERVAL_S)
    took = time.monotonic() - began
    return (cpu_s(proc) - before) / took, (cpu_s(persist) - helper) / took


def persist_proc(daemon: psutil.Process) -> psutil.Process:
    for child in daemon.children():
        if "persist" in child.cmdline():
            return child
    raise AssertionError("the daemon has no persist helper")


async def run_series(daemon: Daemon, network: str, count: int, report: Report) -> None:
    label = network or "bridge"
    channels = [daemon.aio_channel() for _ in range(CHANNELS)]
    try:
        stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        series = Series(daemon, stubs, network)
        proc = daemon_proc(daemon)
        idle_rss, (idle_cpu, idle_persist) = rss_mb(proc), await quiet_cpu(proc)
        began = time.monotonic()
        await series.submit(count)
        submitted = time.monotonic() - began
        all_running = await series.wait_running(600)
        seen, follow_s = await series.follow()
        # The 2,000 cancelled followers are torn down first: the window below
        # holds the samplers' work, not the end of those streams.
        await asyncio.sleep(SETTLE_S)
        cpu, persist_cpu = await quiet_cpu(proc)
        rss = rss_mb(proc)
        launcher = psutil.Process(daemon.launcher_pid())
        sampled = await series.sampled()
        stop_s = await series.stop()
    finally:
        for channel in channels:
            await channel.close()
    n = len(series.ids)
    budget = 50 + 10 * n / 100
    report.figures[f"{label}: jobs running"] = n
    report.figures[f"{label}: RunJob p50 ms"] = p50(series.latencies) * 1000
    report.figures[f"{label}: RunJob p99 ms"] = p99(series.latencies) * 1000
    report.figures[f"{label}: submitted s"] = round(submitted, 2)
    report.figures[f"{label}: all RUNNING s after"] = round(all_running, 2)
    report.figures[f"{label}: followers that saw output"] = seen
    report.figures[f"{label}: follow s"] = round(follow_s, 2)
    report.figures[f"{label}: jobs with samples"] = sampled
    report.figures[f"{label}: daemon RSS MB"] = round(rss, 1)
    report.figures[f"{label}: daemon CPU % of a core, quiet"] = round(cpu * 100, 1)
    report.figures[f"{label}: persist CPU % of a core, quiet"] = round(persist_cpu * 100, 1)
    report.figures[f"{label}: launcher RSS MB"] = round(rss_mb(launcher), 1)
    report.figures[f"{label}: launcher fds"] = launcher.num_fds()
    report.figures[f"{label}: daemon fds"] = proc.num_fds()
    report.figures[f"{label}: stop all s"] = round(stop_s, 2)
    report.baselines[f"{label}: idle daemon RSS MB"] = round(idle_rss, 1)
    report.baselines[f"{label}: idle daemon CPU %"] = round(idle_cpu * 100, 1)
    report.baselines[f"{label}: idle persist CPU %"] = round(idle_persist * 100, 1)
    for error, times in series.errors.items():
        report.notes.append(f"{label}: {times} x {error}")
    report.check(f"{label}: all {count} started", n == count and not series.errors, "all")
    report.check(f"{label}: all followed and sampled", seen == n and sampled == n, "all")
    report.check(f"{label}: daemon RSS", rss <= budget, f"<= {budget:.0f} MB")
    if network == "none":
        share = (cpu - idle_cpu + persist_cpu - idle_persist) * 2000 / max(n, 1)
        report.notes.append(f"{label}: sampler CPU scaled to 2,000 jobs: {share * 100:.1f} %")
        report.check(f"{label}: sampler for 2,000 jobs", share <= 0.25, "<= 25 % of a core")


def main() -> None:
    args = parse()
    require_root()
    report = Report("concurrent_jobs", args.quick)
    for network, count in (("none", args.none), ("", args.bridge)):
        if not count:
            continue
        with running_daemon(maxConcurrentJobs=0) as daemon:
            asyncio.run(run_series(daemon, network, count, report))
            report.notes.append(f"{network or 'bridge'}: daemon log tail: {tail(daemon.log_path)}")
    report.emit()


def tail(path: Path) -> str:
    lines = [line for line in path.read_text().splitlines() if "WARNING" in line or "ERROR" in line]
    return " | ".join(lines[-5:]) or "no warnings"


if __name__ == "__main__":
    main()
