"""Daemon restart: time to serve the full job list again; RSS of the helpers.

    .venv/bin/python bench/restart_time.py [--quick]

10,000 jobs (--quick: 1,000) are submitted scheduled an hour ahead
(schedule="1h", so they stay SCHEDULED) from 50 grpc.aio callers; once the
state helper's sqlite file (ROOT/state/jobs.db) holds all of them, the daemon
is killed with SIGKILL and `joblet serve` started again on the same config.
The clock runs from just before that exec until a ListJobs over mTLS (polled
every 50 ms, each try on a fresh channel) returns every job; the time until
the port accepts a connection is reported too. Three restarts, median.
Baselines, same run and same root: the same restart with 0 jobs, one
ListJobs of all the jobs on the warm daemon, and `python -c "import
joblet.daemon.main"` (the interpreter and import share of any start).
RSS (psutil) of each helper (pids in ROOT/run/persist.pid, state.pid): idle,
after the jobs were written, and after a restart loaded them.
Target: restart to a full list <= 2 s.

Python runs as in an installed joblet, from compiled bytecode: this tree is an
editable install, and with PYTHONDONTWRITEBYTECODE=1 in the environment every
start would compile the daemon's ~100 modules again, which no installed copy
does (pip compiles at install). So the package is compiled first (compileall,
bytecode beside the sources, ignored by git). BENCH_NO_BYTECODE=1 skips that.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import statistics
import subprocess
import sys
import time

import grpc
import psutil
from common import (
    Daemon,
    Report,
    compile_package,
    parse_args,
    running_daemon,
    time_command,
)

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

CALLERS = 50
CHANNELS = 5
RESTARTS = 3
POLL_S = 0.05
RESTART_DEADLINE_S = 120.0
WRITE_DEADLINE_S = 300.0
HELPERS = ("state", "persist")
MB = 1e6


# ---- submitting -------------------------------------------------------------


async def _caller(stub: pb_grpc.JobServiceStub, left: list[int]) -> None:
    while left[0] > 0:
        left[0] -= 1
        await stub.RunJob(pb.RunJobRequest(command="true", schedule="1h"))


async def submit(daemon: Daemon, total: int) -> float:
    """Submits `total` scheduled jobs; RunJob calls per second."""
    channels = [daemon.aio_channel() for _ in range(CHANNELS)]
    try:
        stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        left, start = [total], time.perf_counter()
        await asyncio.gather(*(_caller(stubs[i % CHANNELS], left) for i in range(CALLERS)))
        return total / (time.perf_counter() - start)
    finally:
        for channel in channels:
            await channel.close(None)


def stored_rows(daemon: Daemon) -> int:
    db = daemon.root / "state" / "jobs.db"
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
    except sqlite3.Error:
        return -1


def wait_stored(daemon: Daemon, total: int) -> float:
    """Waits until the state file holds `total` rows and the state helper is
    idle (its last writes done); seconds waited after the submission."""
    start, deadline = time.perf_counter(), time.monotonic() + WRITE_DEADLINE_S
    state = psutil.Process(helper_pid(daemon, "state"))
    while time.monotonic() < deadline:
        if stored_rows(daemon) >= total:
            before = sum(state.cpu_times()[:2])
            time.sleep(0.5)
            if sum(state.cpu_times()[:2]) - before < 0.01:
                return time.perf_counter() - start
        else:
            time.sleep(0.1)
    raise RuntimeError(f"state holds {stored_rows(daemon)} of {total} jobs")


# ---- restarting --------------------------------------------------------------


def list_count(daemon: Daemon) -> int:
    """Jobs in one ListJobs on a fresh channel; -1 while nothing answers."""
    channel = grpc.secure_channel(daemon.address, daemon.credentials())
    try:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        return len(stub.ListJobs(pb.EmptyRequest(), timeout=30).jobs)
    except grpc.RpcError:
        return -1
    finally:
        channel.close()


def port_open(daemon: Daemon) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", daemon.port)) == 0


def restart(daemon: Daemon, total: int) -> tuple[float, float]:
    """SIGKILLs the daemon, starts it again; seconds from the exec until the
    port accepts and until ListJobs returns all `total` jobs."""
    daemon.proc.kill()
    daemon.proc.wait()
    argv = [sys.executable, "-m", "joblet.daemon.main", "serve", "--config"]
    with daemon.log_path.open("ab") as log:
        start = time.perf_counter()
        daemon.proc = subprocess.Popen(
            [*argv, str(daemon.config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    listening = 0.0
    while time.perf_counter() - start < RESTART_DEADLINE_S:
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {daemon.proc.returncode}")
        if not listening and port_open(daemon):
            listening = time.perf_counter() - start
        if listening and list_count(daemon) == total:
            return listening, time.perf_counter() - start
        time.sleep(POLL_S)
    raise RuntimeError(f"no full list of {total} jobs after {RESTART_DEADLINE_S} s")


def restarts(daemon: Daemon, total: int) -> tuple[float, float]:
    """Median (port open, full list) over RESTARTS restarts."""
    samples = [restart(daemon, total) for _ in range(RESTARTS)]
    print(f"restarts with {total} jobs: " + ", ".join(f"{a:.3f}/{b:.3f} s" for a, b in samples))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


# ---- measuring ---------------------------------------------------------------


def helper_pid(daemon: Daemon, name: str) -> int:
    return int((daemon.root / "run" / f"{name}.pid").read_text().strip())


def helper_rss(daemon: Daemon, label: str) -> dict[str, float]:
    time.sleep(1.0)  # let a freshly started helper finish its start
    return {
        f"{name}_rss_{label}_mb": psutil.Process(helper_pid(daemon, name)).memory_info().rss / MB
        for name in HELPERS
    }


def timed_list(daemon: Daemon) -> float:
    stub = daemon.jobs()
    stub.ListJobs(pb.EmptyRequest())
    start = time.perf_counter()
    stub.ListJobs(pb.EmptyRequest())
    return time.perf_counter() - start


def import_time() -> float:
    """Median seconds to start the interpreter and import the daemon's module."""
    argv = [sys.executable, "-c", "import joblet.daemon.main"]
    return statistics.median(time_command(argv, RESTARTS))


def measure(daemon: Daemon, total: int, report: Report) -> None:
    report.figures.update(helper_rss(daemon, "idle"))
    empty_port, empty_list = restarts(daemon, 0)
    report.figures.update(helper_rss(daemon, "idle_after_restart"))
    rate = asyncio.run(submit(daemon, total))
    drain = wait_stored(daemon, total)
    report.figures.update(helper_rss(daemon, f"{total}_jobs"))
    list_once = timed_list(daemon)
    port, full = restarts(daemon, total)
    report.figures.update(helper_rss(daemon, f"{total}_jobs_after_restart"))
    statuses = {j.status for j in daemon.jobs().ListJobs(pb.EmptyRequest()).jobs}
    report.figures.update({
        f"restart_to_full_list_{total}_s": full,
        f"restart_to_port_open_{total}_s": port,
        "runjob_per_s_while_filling": rate,
        "state_drain_after_submit_s": drain,
    })  # fmt: skip
    report.baselines = {
        "restart_to_list_0_jobs_s": empty_list,
        "restart_to_port_0_jobs_s": empty_port,
        f"listjobs_{total}_warm_s": list_once,
        "python_import_daemon_main_s": import_time(),
    }
    report.check("restart", full <= 2.0, f"restart to a list of all {total} jobs <= 2 s")
    report.check("all scheduled", statuses == {"SCHEDULED"}, "every job still SCHEDULED")
    report.notes.append(f"statuses after the restarts: {sorted(statuses)}")


def main() -> None:
    args = parse_args(__doc__ or "")
    total = 1_000 if args.quick else 10_000
    report = Report("restart_time", args.quick)
    compile_package(report)
    with running_daemon() as daemon:
        measure(daemon, total, report)
    report.emit()


if __name__ == "__main__":
    main()
