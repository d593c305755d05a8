"""Soak: N mixed jobs through one daemon with job retention on; nothing leaks.

    .venv/bin/python bench/soak.py [--quick] [--jobs N] [--minutes M]

(default 10,000 jobs, --quick 1,000; stops early after --minutes, 30 by
default.) The mix (joblet.testing.soak): network none, bridge, isolated, a
custom network, a memory and a filesystem volume, uploads, limits, OOM
kills, stops, jobTimeout ends, commands that do not exist; 8 callers, each
submitting its next job once its last has ended. Retention keeps the newest
200 finished jobs (sweeping every 2 s). Every N/10 jobs the counts of
joblet.testing.leaks are recorded: RSS and fds of the daemon, launcher,
state and persist helpers, the daemon's inotify watches, cgroups under its
parent (all hierarchies), mounts under its root, network namespaces of its
jobs, veths and nftables set elements in its namespace, loop devices of its
volumes, files under its root (persist's history aside). Checks: each
series flat after warm-up (last within 10 % of the value at 2/10), and,
once no job runs and the finished ones are deleted, every count back to
its idle value (taken after the network and volumes were made, before the
first job). Baseline: jobs per second of the same mix.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time

from common import Daemon, Report, require_root, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.testing import leaks, soak

CALLERS = 8
CHANNELS = 4
SETTLE_S = 60.0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 jobs")
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()
    args.jobs = args.jobs or (1_000 if args.quick else 10_000)
    return args


def run_here(*argv: str) -> str:
    """The bench runs in the daemon's network namespace (common.enter_private_netns)."""
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def watched(daemon: Daemon) -> leaks.Watched:
    return leaks.Watched(daemon.proc.pid, daemon.root, daemon.parent, run_here)


async def settle(
    stub: pb_grpc.JobServiceStub, target: dict[str, int], w: leaks.Watched
) -> dict[str, int]:
    """Delete the finished jobs, then read the counts until they are back
    to `target` or SETTLE_S has passed; the last reading."""
    await stub.DeleteAllJobs(pb.DeleteAllJobsReq(), timeout=120)
    deadline = time.monotonic() + SETTLE_S
    while True:
        now = leaks.counts(w)
        if not leaks.back_to_idle(target, now) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(1.0)


async def run(daemon: Daemon, jobs: int, minutes: float, report: Report) -> None:
    channels = [daemon.aio_channel() for _ in range(CHANNELS)]
    try:
        stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        await soak.prepare(channels[0])
        for stub in stubs:  # every connection made before the idle counts
            await stub.ListJobs(pb.EmptyRequest(), timeout=60)
        w = watched(daemon)
        idle = leaks.counts(w)
        series: list[tuple[int, dict[str, int]]] = []
        began = time.monotonic()
        every = max(1, jobs // 10)
        tally = await soak.soak(
            stubs, jobs, callers=CALLERS, every=every,
            record=lambda done: series.append((done, leaks.quiet_counts(w))),
            deadline_s=minutes * 60,
        )  # fmt: skip
        took = time.monotonic() - began
        end = await settle(stubs[0], idle, w)
    finally:
        for channel in channels:
            await channel.close()
    readings = [counts for _, counts in series]
    for name in idle:
        values = " ".join(str(counts.get(name, 0)) for counts in readings)
        report.notes.append(f"series {name}: idle {idle[name]} | {values} | end {end.get(name, 0)}")
    report.figures["jobs done"] = tally.done
    report.figures["minutes"] = round(took / 60, 2)
    report.baselines["jobs per s"] = round(tally.done / took, 1)
    for outcome, count in sorted(tally.outcomes.items()):
        report.notes.append(f"{count} x {outcome}")
    for refusal, count in sorted(tally.refused.items()):
        report.notes.append(f"{count} x RunJob refused, {refusal}")
    growing = leaks.flat(readings, 2)
    left = leaks.back_to_idle(idle, end)
    report.notes += [f"grew: {line}" for line in growing] + [f"left: {line}" for line in left]
    report.check("every job done", tally.done == jobs, f"{jobs}")
    report.check("series flat after warm-up", not growing, "last <= 110 % of 2/10")
    report.check("back to idle", not left, "every count")


def main() -> None:
    args = parse()
    require_root()
    report = Report("soak", args.quick)
    retention = {"maxAge": "0s", "maxJobs": 200, "interval": "2s"}
    with running_daemon(jobTimeout=soak.JOB_TIMEOUT, jobRetention=retention) as daemon:
        asyncio.run(run(daemon, args.jobs, args.minutes, report))
    report.emit()


if __name__ == "__main__":
    main()
