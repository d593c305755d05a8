"""RunJob while job retention collects 10,000 finished jobs: what the
collection adds to RunJob's latency (p50, p99), against the same run's
RunJob latency outside the collection.

    .venv/bin/python bench/gc_runjob.py [--quick]

10,000 finished jobs (--quick: 2,000), ended two days ago, each with its
directory and workspace, are stored in the daemon's state database while it
is stopped; it starts again with `jobRetention: {maxAge: 1d, interval: 20s}`,
so its first sweep collects them all 20 s after the start. Meanwhile 2
callers submit jobs (`schedule: 1h`: accepted and recorded, the state store
confirming each, no process started), each 5 ms after its last answer. The collection's window
is taken from the daemon's log (the sweep's end and duration); the baseline is
every call that started and ended outside it. Target: p99 inside the
window <= baseline p99 + 5 ms.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

from common import Daemon, Report, _wait_for_port, ms, p50, p99, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.serialization import job_to_json

INTERVAL_S = 20.0
CALLERS = 2
GAP_S = 0.005  # between a caller's calls: a busy node, not a saturated one
AFTER_S = 5.0  # calls after the collection ends, for the baseline


def seeded(count: int, node_id: str) -> list[Job]:
    ended = time.time() - 2 * 86400
    spec = JobSpec(command="python3", args=("step.py",), name="batch-step")
    return [
        Job(str(uuid.uuid4()), spec, JobStatus.COMPLETED, node_id, ended - 1, ended - 1, 0, ended)
        for _ in range(count)
    ]


def restart_with(daemon: Daemon, jobs: list[Job]) -> None:
    """Stop the daemon, store `jobs` and make their directories, start it again."""
    argv = daemon.proc.args
    daemon.proc.terminate()
    daemon.proc.wait(timeout=60)
    db = sqlite3.connect(daemon.root / "state" / "jobs.db", timeout=30)
    with db:
        db.executemany(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, NULL)",
            ((job.id, job_to_json(job)) for job in jobs),
        )
    db.close()
    for job in jobs:
        work = daemon.root / "jobs" / job.id / "work"
        work.mkdir(parents=True)
        (work / "result.txt").write_text("done\n")
    with daemon.log_path.open("ab") as log:
        daemon.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    _wait_for_port(daemon.port, daemon.proc, daemon.log_path)


def log_time(line: str) -> float:
    stamp = " ".join(line.split()[:2])  # "2026-01-02 03:04:05,678"
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def window(log_path: Path) -> tuple[float, float] | None:
    """The first sweep that collected: its start and end, from its log line
    ("... collected N finished job(s) in S.SSSs")."""
    for line in log_path.read_text().splitlines():
        if "job retention: collected" in line:
            end = log_time(line)
            return end - float(line.rsplit(" in ", 1)[1].rstrip("s")), end
    return None


async def submit_until(daemon: Daemon, done: asyncio.Event) -> list[tuple[float, float, float]]:
    """(start, end, latency) of every RunJob until `done`."""
    calls: list[tuple[float, float, float]] = []

    async def caller(stub: pb_grpc.JobServiceStub) -> None:
        request = pb.RunJobRequest(command="true", schedule="1h")
        while not done.is_set():
            began, t0 = time.time(), time.perf_counter()
            await stub.RunJob(request)
            calls.append((began, time.time(), time.perf_counter() - t0))
            await asyncio.sleep(GAP_S)

    async with daemon.aio_channel() as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        await asyncio.gather(*(caller(stub) for _ in range(CALLERS)))
    return calls


async def measure(daemon: Daemon) -> tuple[list[tuple[float, float, float]], tuple[float, float]]:
    done = asyncio.Event()
    task = asyncio.create_task(submit_until(daemon, done))
    deadline = time.monotonic() + INTERVAL_S + 120
    while (found := window(daemon.log_path)) is None:
        assert time.monotonic() < deadline, "the collection never ended"
        await asyncio.sleep(0.5)
    await asyncio.sleep(AFTER_S)
    done.set()
    return await task, found


def main() -> None:
    args = parse_args(__doc__ or "")
    count = 2_000 if args.quick else 10_000
    report = Report("gc_runjob", args.quick)
    retention = {"maxAge": "1d", "maxJobs": 0, "interval": f"{INTERVAL_S:g}s"}
    with running_daemon(jobRetention=retention, maxWorkspaceSize=0) as daemon:
        node_id = (daemon.root / "state" / "node-id").read_text().strip()
        jobs = seeded(count, node_id)
        restart_with(daemon, jobs)
        calls, (start, end) = asyncio.run(measure(daemon))
        left = sum(1 for job in jobs if (daemon.root / "jobs" / job.id).exists())
        stub = daemon.jobs()
        pages = stub.ListJobPages(pb.ListJobPagesRequest(pageSize=1000), timeout=120)
        listed = sum(len(page.jobs) for page in pages)
    inside = [lat for began, ended, lat in calls if ended >= start and began <= end]
    outside = [lat for began, ended, lat in calls if ended < start or began > end]
    report.figures["collection of jobs"] = count
    report.figures["collection s"] = round(end - start, 2)
    report.figures["RunJob during collection p50 ms"] = p50(inside) * 1000
    report.figures["RunJob during collection p99 ms"] = p99(inside) * 1000
    report.figures["calls during collection"] = len(inside)
    report.baselines["RunJob outside p50 ms"] = p50(outside) * 1000
    report.baselines["RunJob outside p99 ms"] = p99(outside) * 1000
    report.baselines["calls outside"] = len(outside)
    added = (p99(inside) - p99(outside)) * 1000
    report.notes.append(f"p99 added by the collection: {added:+.2f} ms ({ms(end - start)} window)")
    report.check("every seeded job collected", left == 0 and listed == len(calls), "all")
    report.check("p99 added", added <= 5.0, "<= 5 ms")
    report.emit()


if __name__ == "__main__":
    sys.exit(main())
