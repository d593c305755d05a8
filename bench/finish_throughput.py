"""Short jobs finished per second: `true` jobs from 32 callers, each
submitting its next once the last one's log stream has ended.

    .venv/bin/python bench/finish_throughput.py [--quick] [--network none|bridge]
        [--rounds N] [--ab SRC]

Each round runs TOTAL jobs (--quick: 300, else 2,000) through a fresh
daemon, then the same count of bare `unshare` of the job's namespaces plus a
network namespace running `true`, 32 at a time (the same run's baseline).
It prints jobs/s, the bare rate, their ratio, the CPU each job cost the node
(daemon, helpers, launcher and the job's own processes: the figure a shared,
loaded host disturbs least) and the host's load at start and end, and the
medians over the rounds. With `--ab SRC` (a checkout's `src`
directory, e.g. of the commit before a change) each round runs a daemon of
SRC right after one of this tree, alternating which goes first, so a change
is compared with its parent under the same load.
Target (network none): >= 300 jobs/s; bridge: >= 150 jobs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

import psutil
from common import Daemon, running_daemon, unshare_argv

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

CALLERS = 32
CHANNELS = 5


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--network", default="none")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--total", type=int, default=0)
    parser.add_argument("--ab", default="", help="src directory of the tree to compare with")
    return parser.parse_args()


@dataclass
class Run:
    per_s: float
    cpu_ms: float  # CPU per job: daemon, helpers, launcher and the jobs it reaped


def node_cpu_s(daemon: Daemon) -> float:
    """CPU seconds of the daemon and every process under it so far; the
    launcher's reaped children (the jobs) included."""
    total = 0.0
    for proc in [psutil.Process(daemon.proc.pid), *psutil.Process(daemon.proc.pid).children()]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


async def finished_rate(daemon: Daemon, total: int, network: str) -> Run:
    request = pb.RunJobRequest(command="true", network=network)
    channels = [daemon.aio_channel() for _ in range(CHANNELS)]
    try:
        stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        for stub in stubs:
            await stub.ListJobs(pb.EmptyRequest())
        # A few jobs first: the launcher's spare and the daemon's caches warm.
        for _ in range(8):
            job = await stubs[0].RunJob(request)
            async for _chunk in stubs[0].GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid)):
                pass
        left = [total]

        async def caller(stub: pb_grpc.JobServiceStub) -> None:
            while left[0] > 0:
                left[0] -= 1
                job = await stub.RunJob(request)
                async for _chunk in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid)):
                    pass

        cpu, start = node_cpu_s(daemon), time.perf_counter()
        await asyncio.gather(*(caller(stubs[i % CHANNELS]) for i in range(CALLERS)))
        per_s = total / (time.perf_counter() - start)
        return Run(per_s, (node_cpu_s(daemon) - cpu) / total * 1000)
    finally:
        for channel in channels:
            await channel.close(None)


async def bare_unshare_rate(total: int) -> float:
    argv = unshare_argv("true", extra_ns=["--net"])
    left = [total]

    async def caller() -> None:
        while left[0] > 0:
            left[0] -= 1
            proc = await asyncio.create_subprocess_exec(*argv)
            await proc.wait()

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return total / (time.perf_counter() - start)


def daemon_rate(total: int, network: str, env: Mapping[str, str] | None) -> Run:
    with running_daemon(env=env) as daemon:
        return asyncio.run(finished_rate(daemon, total, network))


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg()[:1])


def main() -> None:
    args = _args()
    # Stopped early (SIGTERM), the daemons still go: the blocks unwind.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    total = args.total or (300 if args.quick else 2_000)
    rates: dict[str, list[float]] = {"this": [], "bare": []}
    cpu: dict[str, list[float]] = {"this": [], "ab": []}
    other_env = {"PYTHONPATH": os.path.abspath(args.ab)} if args.ab else None
    if args.ab:
        rates["ab"] = []
    print(f"{total} `true` jobs, network {args.network}, {CALLERS} callers; load {load()}")
    for round_ in range(args.rounds):
        start_load = load()
        order = ["this", "ab"] if round_ % 2 == 0 else ["ab", "this"]
        got: dict[str, float] = {}
        for name in order:
            if name == "ab" and not args.ab:
                continue
            run = daemon_rate(total, args.network, other_env if name == "ab" else None)
            got[name] = run.per_s
            cpu[name].append(run.cpu_ms)
        got["bare"] = asyncio.run(bare_unshare_rate(total))
        for name, value in got.items():
            rates[name].append(value)
        line = ", ".join(f"{name} {value:.0f}/s" for name, value in got.items())
        line += "; CPU per job " + ", ".join(
            f"{name} {values[-1]:.1f} ms" for name, values in cpu.items() if values
        )
        print(
            f"round {round_ + 1}: {line}; ratio {got['this'] / got['bare']:.2f}"
            f" (load {start_load} -> {load()})"
        )
    median = {name: statistics.median(values) for name, values in rates.items()}
    cpu_median = {name: statistics.median(values) for name, values in cpu.items() if values}
    summary = f"median: this tree {median['this']:.0f} jobs/s ({cpu_median['this']:.1f} ms CPU/job)"
    if args.ab:
        ratio = median["this"] / median["ab"]
        summary += (
            f", {args.ab} {median['ab']:.0f} jobs/s ({cpu_median['ab']:.1f} ms CPU/job;"
            f" this/that {ratio:.2f} in rate, {cpu_median['this'] / cpu_median['ab']:.2f} in CPU)"
        )
    summary += f", bare unshare {median['bare']:.0f}/s, ratio {median['this'] / median['bare']:.2f}"
    print(summary)
    target = 300 if args.network == "none" else 150
    print(f"target >= {target} jobs/s: {'PASS' if median['this'] >= target else 'not met'}")


if __name__ == "__main__":
    main()
