"""A burst of launches into one daemon: 64 callers each send RunJob `true` as
fast as it is answered, with no wait for the job's end, until TOTAL are in.

    .venv/bin/python bench/launch_burst.py [--quick] [--total N]
        [--network none|bridge|mixed] [--ab SRC]

Counts how the jobs ended (every one must be COMPLETED), how often the
daemon's connection to its launcher broke, and the accepted and completed
rates. With `--ab SRC` (a checkout's `src` directory, e.g. of the commit
before a change) a daemon of SRC takes the same burst right after, in the
same run, as the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from common import Daemon, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

CALLERS = 64
CHANNELS = 8
FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}


@dataclass
class Burst:
    accepted_per_s: float
    completed_per_s: float
    statuses: dict[str, int]
    breaks: int  # "the connection to the launcher ... broke" in the daemon's log


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--total", type=int, default=0)
    parser.add_argument("--network", default="mixed", choices=["none", "bridge", "mixed"])
    parser.add_argument("--ab", default="", help="src directory of the tree to compare with")
    return parser.parse_args()


async def burst(daemon: Daemon, total: int, network: str) -> Burst:
    nets = ["none", "bridge"] if network == "mixed" else [network]
    channels = [daemon.aio_channel() for _ in range(CHANNELS)]
    try:
        stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        left, ids = [total], []

        async def caller(stub: pb_grpc.JobServiceStub) -> None:
            while left[0] > 0:
                left[0] -= 1
                request = pb.RunJobRequest(command="true", network=nets[left[0] % len(nets)])
                ids.append((await stub.RunJob(request)).jobUuid)

        start = time.perf_counter()
        await asyncio.gather(*(caller(stubs[i % CHANNELS]) for i in range(CALLERS)))
        accepted = time.perf_counter() - start
        statuses: collections.Counter[str] = collections.Counter()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            jobs = (await stubs[0].ListJobs(pb.EmptyRequest())).jobs
            statuses = collections.Counter(j.status for j in jobs)
            if sum(n for s, n in statuses.items() if s in FINAL) >= len(ids):
                break
            await asyncio.sleep(0.2)
        completed = time.perf_counter() - start
    finally:
        for channel in channels:
            await channel.close(None)
    text = daemon.log_path.read_text(errors="replace")
    breaks = text.count("the connection to the launcher (pid")
    return Burst(total / accepted, total / completed, dict(statuses), breaks)


def run(total: int, network: str, env: Mapping[str, str] | None) -> Burst:
    with running_daemon(env=env) as daemon:
        return asyncio.run(burst(daemon, total, network))


def main() -> None:
    args = _args()
    total = args.total or (500 if args.quick else 2_000)
    load = "/".join(f"{x:.1f}" for x in os.getloadavg()[:1])
    print(f"{total} `true` jobs, network {args.network}, {CALLERS} callers; load {load}")
    trees = {"this tree": None}
    if args.ab:
        trees[args.ab] = {"PYTHONPATH": os.path.abspath(args.ab)}
    failed = 0
    for name, env in trees.items():
        got = run(total, args.network, env)
        lost = total - got.statuses.get("COMPLETED", 0)
        failed += lost if env is None else 0
        print(
            f"{name}: accepted {got.accepted_per_s:.0f}/s, completed {got.completed_per_s:.0f}/s;"
            f" {got.statuses}; not COMPLETED {lost}; launcher connection broke {got.breaks}x"
        )
    load = "/".join(f"{x:.1f}" for x in os.getloadavg()[:1])
    print(f"load at end {load}; every job COMPLETED: {'PASS' if failed == 0 else 'FAIL'}")


if __name__ == "__main__":
    main()
