"""Restart with 10,000 retained jobs and 2,000 running: until the daemon
listens, and until every running job is re-attached.

    .venv/bin/python bench/restart_scale.py [--quick]

(--quick: 2,000 retained, 200 running.) 10,000 finished jobs are stored in
a stopped daemon's state database (as bench/gc_runjob.py does), the daemon
is started again, 2,000 `sleep` jobs (network none) are started from 16
callers, then the daemon gets SIGTERM (a clean stop leaves the jobs with the
launcher) and `joblet serve` is started again on the same config. Clocks
from just before that exec: the port accepting a connection (listening),
and ListJobPages answering every one of the 2,000 as RUNNING (re-attached,
polled every 100 ms). Two restarts, median. Baseline, same run: the same
restart with the retained jobs and no running job. Targets: listening
<= 2 s, all re-attached <= 5 s.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time

from common import Daemon, Report, _wait_for_port, parse_args, running_daemon
from concurrent_jobs import Series
from gc_runjob import restart_with, seeded

from joblet.api import joblet_pb2_grpc as pb_grpc

RESTARTS = 2
POLL_S = 0.1
DEADLINE_S = 300.0


async def start_jobs(daemon: Daemon, count: int) -> Series:
    channels = [daemon.aio_channel() for _ in range(4)]
    try:
        stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        series = Series(daemon, stubs, "none")
        await series.submit(count)
        await series.wait_running(600)
    finally:
        for channel in channels:
            await channel.close()
    return series


async def running_count(daemon: Daemon) -> int:
    async with daemon.aio_channel() as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        return await Series(daemon, [stub], "none").running()


def restart(daemon: Daemon, running: int) -> tuple[float, float]:
    """SIGTERM, exec again: (listening s, every job RUNNING s)."""
    argv = daemon.proc.args
    daemon.proc.terminate()
    daemon.proc.wait(timeout=120)
    with daemon.log_path.open("ab") as log:
        began = time.monotonic()
        daemon.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    _wait_for_port(daemon.port, daemon.proc, daemon.log_path)
    listening = time.monotonic() - began
    while True:
        try:
            seen = asyncio.run(running_count(daemon))
        except Exception:  # not serving yet
            seen = -1
        if seen >= running:
            return listening, time.monotonic() - began
        if time.monotonic() - began > DEADLINE_S:
            raise AssertionError(f"{seen} of {running} jobs re-attached after {DEADLINE_S}s")
        time.sleep(POLL_S)


async def stop_all(series: Series) -> None:
    channels = [series.daemon.aio_channel() for _ in range(4)]
    try:
        series.stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        await series.stop()
    finally:
        for channel in channels:
            await channel.close()


def main() -> None:
    args = parse_args(__doc__ or "")
    retained, running = (2_000, 200) if args.quick else (10_000, 2_000)
    report = Report("restart_scale", args.quick)
    with running_daemon(maxConcurrentJobs=0) as daemon:
        node_id = (daemon.root / "state" / "node-id").read_text().strip()
        restart_with(daemon, seeded(retained, node_id))
        base = [restart(daemon, 0) for _ in range(RESTARTS)]
        series = asyncio.run(start_jobs(daemon, running))
        timed = [restart(daemon, running) for _ in range(RESTARTS)]
        asyncio.run(stop_all(series))
    listening = statistics.median(t[0] for t in timed)
    attached = statistics.median(t[1] for t in timed)
    report.figures["retained jobs"] = retained
    report.figures["running jobs"] = running
    report.figures["restart -> listening s"] = round(listening, 2)
    report.figures["restart -> all re-attached s"] = round(attached, 2)
    report.baselines["no running job: listening s"] = round(
        statistics.median(t[0] for t in base), 2
    )
    report.baselines["no running job: first listing s"] = round(
        statistics.median(t[1] for t in base), 2
    )
    report.notes.append(f"each restart (listening, re-attached): {timed}")
    report.check("listening", listening <= 2.0, "<= 2 s")
    report.check("all re-attached", attached <= 5.0, "<= 5 s")
    report.emit()


if __name__ == "__main__":
    sys.exit(main())
