"""Recovery times: the launcher or the daemon killed while jobs run.

    .venv/bin/python bench/recovery.py [--quick]

Launcher: with three jobs printing (a line every 50 ms), the launcher is
killed with SIGKILL; the clock runs from the kill until a follower of a new
`echo` job (RunJob sent right after the kill, then GetJobLogs on the same mTLS
channel) receives its first byte, and until the three jobs are settled
(FAILED, "launcher lost"). TRIALS kills (--quick: 3), median.
Daemon: with the same three jobs running, the daemon is killed with SIGKILL
and `joblet serve` started again on the same config; the clock runs from the
exec until the port accepts, and until ListJobs (a fresh channel each try,
polled every 20 ms) lists the three jobs RUNNING again, re-attached. Median of
TRIALS restarts.
Baselines, same run: a new job's first byte on a warm daemon (median of 10),
and `python -c "import joblet.isolation.launcher"` (the interpreter and import
share of a launcher's start).
Target: a new job's first byte within 1 s of the launcher's kill.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time

import grpc
from common import Daemon, Report, compile_package, parse_args, running_daemon, time_command

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

TRIALS = 7
RUNNING_JOBS = 3
TICKER = "while true; do echo tick; sleep 0.05; done"
POLL_S = 0.02
DEADLINE_S = 60.0


def first_byte(stub: pb_grpc.JobServiceStub, start: float) -> float:
    """Seconds from `start` until a new echo job's first output arrives."""
    job_id = stub.RunJob(pb.RunJobRequest(command="echo", args=["hi"])).jobUuid
    for chunk in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id), timeout=DEADLINE_S):
        if chunk.payload:
            return time.perf_counter() - start
    raise RuntimeError(f"job {job_id} printed nothing")


def start_tickers(stub: pb_grpc.JobServiceStub) -> list[str]:
    ids = [stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", TICKER])).jobUuid
           for _ in range(RUNNING_JOBS)]  # fmt: skip
    wait(lambda: all(status(stub, j) == "RUNNING" for j in ids), "the jobs to run")
    return ids


def status(stub: pb_grpc.JobServiceStub, job_id: str) -> str:
    return str(stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status)


def wait(done: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def stop_all(stub: pb_grpc.JobServiceStub, ids: list[str]) -> None:
    for job_id in ids:
        if status(stub, job_id) == "RUNNING":
            stub.StopJob(pb.StopJobReq(uuid=job_id))


# ---- the launcher --------------------------------------------------------------


def launcher_kill(daemon: Daemon) -> tuple[float, float]:
    """(kill -> a new job's first byte, kill -> the running jobs settled), seconds."""
    stub = daemon.jobs()
    ids = start_tickers(stub)
    start = time.perf_counter()
    os.kill(daemon.launcher_pid(), signal.SIGKILL)
    first = first_byte(stub, start)
    wait(lambda: all(status(stub, j) == "FAILED" for j in ids), "the jobs to be settled")
    settled = time.perf_counter() - start
    return first, settled


# ---- the daemon ----------------------------------------------------------------


def port_open(daemon: Daemon) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", daemon.port)) == 0


def running_listed(daemon: Daemon, ids: list[str]) -> bool:
    channel = grpc.secure_channel(daemon.address, daemon.credentials())
    try:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        jobs = {j.uuid: j.status for j in stub.ListJobs(pb.EmptyRequest(), timeout=10).jobs}
    except grpc.RpcError:
        return False
    finally:
        channel.close()
    return all(jobs.get(j) == "RUNNING" for j in ids)


def daemon_kill(daemon: Daemon) -> tuple[float, float]:
    """(exec -> port open, exec -> every running job listed RUNNING), seconds."""
    ids = start_tickers(daemon.jobs())
    daemon.proc.kill()
    daemon.proc.wait()
    argv = [sys.executable, "-m", "joblet.daemon.main", "serve", "--config"]
    with daemon.log_path.open("ab") as log:
        start = time.perf_counter()
        daemon.proc = subprocess.Popen(
            [*argv, str(daemon.config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    listening = 0.0
    while time.perf_counter() - start < DEADLINE_S:
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {daemon.proc.returncode}")
        if not listening and port_open(daemon):
            listening = time.perf_counter() - start
        if listening and running_listed(daemon, ids):
            reattached = time.perf_counter() - start
            stop_all(daemon.jobs(), ids)
            return listening, reattached
        time.sleep(POLL_S)
    raise RuntimeError(f"the running jobs were not listed within {DEADLINE_S} s")


# ---- the report ----------------------------------------------------------------


def warm_first_bytes(daemon: Daemon, runs: int) -> list[float]:
    stub = daemon.jobs()
    return [first_byte(stub, time.perf_counter()) for _ in range(runs)]


def measure(daemon: Daemon, trials: int, report: Report) -> None:
    warm = warm_first_bytes(daemon, 10)
    launcher = [launcher_kill(daemon) for _ in range(trials)]
    print("launcher kills (first byte / settled): "
          + ", ".join(f"{a * 1000:.0f}/{b * 1000:.0f} ms" for a, b in launcher))  # fmt: skip
    restarts = [daemon_kill(daemon) for _ in range(trials)]
    print("daemon kills (port / re-attached): "
          + ", ".join(f"{a * 1000:.0f}/{b * 1000:.0f} ms" for a, b in restarts))  # fmt: skip
    first = statistics.median(a for a, _ in launcher)
    report.figures.update({
        "launcher_kill_to_first_byte_s": first,
        "launcher_kill_to_first_byte_max_s": max(a for a, _ in launcher),
        "launcher_kill_to_jobs_settled_s": statistics.median(b for _, b in launcher),
        "daemon_kill_to_port_open_s": statistics.median(a for a, _ in restarts),
        "daemon_kill_to_reattached_s": statistics.median(b for _, b in restarts),
    })  # fmt: skip
    launcher_import = [sys.executable, "-c", "import joblet.isolation.launcher"]
    report.baselines = {
        "warm_first_byte_s": statistics.median(warm),
        "python_import_launcher_s": statistics.median(time_command(launcher_import, trials)),
    }
    report.check("launcher", first <= 1.0, "launcher kill -> a new job's first byte <= 1 s")
    report.notes.append(f"{RUNNING_JOBS} printing jobs running at each kill; {trials} trials")


def main() -> None:
    args = parse_args(__doc__ or "")
    trials = 3 if args.quick else TRIALS
    report = Report("recovery", args.quick)
    compile_package(report)
    with running_daemon() as daemon:
        measure(daemon, trials, report)
    report.emit()


if __name__ == "__main__":
    main()
