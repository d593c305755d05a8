"""Daemon memory and `rnx job list` wall time.

    .venv/bin/python bench/daemon_rss.py [--quick]

Idle RSS of the daemon and of the launcher (psutil), RSS after 1,000 finished
`true` jobs run 8 at a time (--quick: 200), and the wall time of
`rnx job list` (median of 10) with those jobs listed and with none. Baselines:
the wall time of `python -c pass` and of `python -c "import grpc"` with the
same interpreter rnx runs on.
Targets: idle daemon RSS <= 50 MB, `rnx job list` <= 200 ms.

Python runs as in an installed joblet, from compiled bytecode: this tree is an
editable install, and with PYTHONDONTWRITEBYTECODE=1 in the environment every
rnx run would compile the package's sources again (~30-50 ms here), which no
installed copy does (pip compiles at install). So the package is compiled
first (compileall, bytecode beside the sources, ignored by git).
BENCH_NO_BYTECODE=1 skips that step.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

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

CONCURRENCY = 8
LIST_RUNS = 10
SETTLE_S = 1.0
STREAM_TIMEOUT_S = 10.0
MB = 1e6


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MB


def run_true(stub: pb_grpc.JobServiceStub) -> None:
    job = stub.RunJob(pb.RunJobRequest(command="true"))
    try:
        for _ in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid), timeout=STREAM_TIMEOUT_S):
            pass  # the stream closes when the job ends
    except grpc.RpcError as exc:
        # A job whose end the daemon never recorded keeps its stream open;
        # it is counted below instead of hanging the benchmark.
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise


def run_many(daemon: Daemon, count: int) -> dict[str, int]:
    """Runs `count` jobs; how many ended in each status."""
    stubs = [daemon.jobs() for _ in range(CONCURRENCY)]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda i: run_true(stubs[i % CONCURRENCY]), range(count)))
    deadline = time.monotonic() + 10
    while True:
        statuses = Counter(j.status for j in stubs[0].ListJobs(pb.EmptyRequest()).jobs)
        if statuses["COMPLETED"] == count or time.monotonic() > deadline:
            return dict(statuses)
        time.sleep(0.1)


def rnx_list_s(daemon: Daemon) -> float:
    """Median wall seconds of `rnx job list` over LIST_RUNS runs, after a warm-up."""
    argv = daemon.rnx_argv("job", "list")
    time_command(argv, 1)
    return statistics.median(time_command(argv, LIST_RUNS))


def measure(daemon: Daemon, count: int, report: Report) -> None:
    time.sleep(SETTLE_S)
    pid, launcher = daemon.proc.pid, daemon.launcher_pid()
    idle, launcher_idle = rss_mb(pid), rss_mb(launcher)
    list_empty = rnx_list_s(daemon)
    started = time.perf_counter()
    statuses = run_many(daemon, count)
    jobs_per_s = count / (time.perf_counter() - started)
    time.sleep(SETTLE_S)
    report.figures = {
        "daemon_idle_rss_mb": idle,
        "launcher_idle_rss_mb": launcher_idle,
        f"daemon_rss_after_{count}_jobs_mb": rss_mb(pid),
        f"launcher_rss_after_{count}_jobs_mb": rss_mb(launcher),
        f"rnx_list_{count}_jobs_ms": rnx_list_s(daemon) * 1e3,
        "rnx_list_0_jobs_ms": list_empty * 1e3,
        "true_jobs_per_s_8_concurrent": jobs_per_s,
        "jobs_completed": statuses.get("COMPLETED", 0),
        "jobs_stuck_running": statuses.get("RUNNING", 0),
    }
    report.check("all completed", statuses.get("COMPLETED", 0) == count, f"{count} COMPLETED")
    report.check("idle rss", idle <= 50, "daemon idle RSS <= 50 MB")
    for key in (f"rnx_list_{count}_jobs_ms", "rnx_list_0_jobs_ms"):
        report.check(key, report.figures[key] <= 200, "<= 200 ms")


def main() -> None:
    args = parse_args(__doc__ or "")
    count = 200 if args.quick else 1000
    report = Report("daemon_rss", args.quick)
    compile_package(report)
    with running_daemon() as daemon:
        measure(daemon, count, report)
    python_pass = statistics.median(time_command([sys.executable, "-c", "pass"], LIST_RUNS))
    bare = statistics.median(time_command([sys.executable, "-S", "-c", "pass"], LIST_RUNS))
    grpc_import = statistics.median(time_command([sys.executable, "-c", "import grpc"], LIST_RUNS))
    report.baselines = {
        "python_c_pass_ms": python_pass * 1e3,
        "python_S_c_pass_ms": bare * 1e3,
        "python_c_import_grpc_ms": grpc_import * 1e3,
    }
    report.emit()


if __name__ == "__main__":
    main()
