"""Live restore: a clean stop (SIGTERM) and a start while jobs run.

    .venv/bin/python bench/live_restore.py [--quick]

JOBS jobs each print the time (`date +%s%N`) every 20 ms. TRIALS times
(--quick: 3) the daemon gets SIGTERM (the clock runs until it has exited:
helpers flushed, the launcher told) and `joblet serve` is started again on
the same config (the clock runs from the exec until ListJobs, a fresh channel
each try polled every 20 ms, lists every job RUNNING, re-attached). The jobs
keep running throughout; the longest silence in a job's output over all the
stops and starts is reported, against the same job's median interval between
two lines.
Baselines, same run and jobs: the same restart after `kill -9` (the crash
path, the same re-attach), and `joblet shutdown --stop-jobs` (the jobs
stopped first, then the launcher, bridges and cgroups removed).
"""

from __future__ import annotations

import itertools
import signal
import socket
import statistics
import subprocess
import sys
import time

import grpc
from common import Daemon, Report, compile_package, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.config.model import RootLayout
from joblet.daemon.shutdown import shutdown_daemon

TRIALS = 7
JOBS = 10
CLOCK = "while true; do date +%s%N; sleep 0.02; done"
POLL_S = 0.02
DEADLINE_S = 60.0


def start_clocks(stub: pb_grpc.JobServiceStub) -> list[str]:
    ids = [stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", CLOCK])).jobUuid
           for _ in range(JOBS)]  # fmt: skip
    deadline = time.monotonic() + DEADLINE_S
    while not all(status(stub, j) == "RUNNING" for j in ids):
        if time.monotonic() > deadline:
            raise RuntimeError("the jobs did not start")
        time.sleep(POLL_S)
    return ids


def status(stub: pb_grpc.JobServiceStub, job_id: str) -> str:
    return str(stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status)


def port_open(daemon: Daemon) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", daemon.port)) == 0


def all_running(daemon: Daemon, ids: list[str]) -> bool:
    channel = grpc.secure_channel(daemon.address, daemon.credentials())
    try:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        jobs = {j.uuid: j.status for j in stub.ListJobs(pb.EmptyRequest(), timeout=10).jobs}
    except grpc.RpcError:
        return False
    finally:
        channel.close()
    return all(jobs.get(j) == "RUNNING" for j in ids)


def stop(daemon: Daemon, how: str) -> float:
    """Seconds from the signal until the daemon has exited."""
    start = time.perf_counter()
    if how == "kill":
        daemon.proc.kill()
    else:
        daemon.proc.send_signal(signal.SIGTERM)
    if daemon.proc.wait(timeout=DEADLINE_S) != 0 and how != "kill":
        raise RuntimeError(f"daemon exited with {daemon.proc.returncode}")
    return time.perf_counter() - start


def start(daemon: Daemon, ids: list[str]) -> float:
    """Seconds from the exec until every job is listed RUNNING."""
    argv = [sys.executable, "-m", "joblet.daemon.main", "serve", "--config"]
    with daemon.log_path.open("ab") as log:
        began = time.perf_counter()
        daemon.proc = subprocess.Popen(
            [*argv, str(daemon.config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    while time.perf_counter() - began < DEADLINE_S:
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {daemon.proc.returncode}")
        if port_open(daemon) and all_running(daemon, ids):
            return time.perf_counter() - began
        time.sleep(POLL_S)
    raise RuntimeError(f"the jobs were not re-attached within {DEADLINE_S} s")


def cycles(daemon: Daemon, ids: list[str], how: str, trials: int) -> list[tuple[float, float]]:
    samples = [(stop(daemon, how), start(daemon, ids)) for _ in range(trials)]
    print(f"{how} (stop / re-attached): "
          + ", ".join(f"{a * 1000:.0f}/{b * 1000:.0f} ms" for a, b in samples))  # fmt: skip
    return samples


def silences(stub: pb_grpc.JobServiceStub, job_id: str) -> list[float]:
    """Seconds between consecutive lines of the job's output."""
    request = pb.GetJobLogsReq(uuid=job_id, noFollow=True)
    out = b"".join(c.payload for c in stub.GetJobLogs(request, timeout=DEADLINE_S))
    stamps = [int(line) / 1e9 for line in out.split(b"\n")[:-1]]  # the last may be cut
    return [b - a for a, b in itertools.pairwise(stamps)]


def measure(daemon: Daemon, trials: int, report: Report) -> None:
    ids = start_clocks(daemon.jobs())
    live = cycles(daemon, ids, "sigterm", trials)
    gaps = [silences(daemon.jobs(), job_id) for job_id in ids]
    crash = cycles(daemon, ids, "kill", trials)
    began = time.perf_counter()
    shutdown_daemon(RootLayout(daemon.root), True, DEADLINE_S)
    stop_jobs = time.perf_counter() - began
    daemon.proc.wait()
    report.figures.update({
        "sigterm_to_exit_s": statistics.median(a for a, _ in live),
        "start_to_reattached_s": statistics.median(b for _, b in live),
        "longest_job_silence_s": max(max(g) for g in gaps),
    })  # fmt: skip
    report.baselines = {
        "kill9_start_to_reattached_s": statistics.median(b for _, b in crash),
        "shutdown_stop_jobs_s": stop_jobs,
        "median_line_interval_s": statistics.median(x for g in gaps for x in g),
    }
    report.notes.append(f"{JOBS} jobs printing every 20 ms through every stop; {trials} trials")


def main() -> None:
    args = parse_args(__doc__ or "")
    trials = 3 if args.quick else TRIALS
    report = Report("live_restore", args.quick)
    compile_package(report)
    with running_daemon() as daemon:
        measure(daemon, trials, report)
    report.emit()


if __name__ == "__main__":
    main()
