"""Host-side memory per running job: 50 `sleep 300` jobs.

    .venv/bin/python bench/job_memory.py [--quick]

Every process of a job that is not the user's own command counts as host-side
overhead: here the job's init (tini) for each job, the launcher's RSS growth
from 0 to 50 running jobs, and the daemon's growth. Their sum divided by the
number of jobs is the figure. RSS counts shared pages (the tini binary, libc)
in full for every process; PSS, which splits them, is reported beside it.
--quick runs 10 jobs. Target: <= 2 MB per job.
"""

from __future__ import annotations

import time

import psutil
from common import Daemon, Report, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb

SETTLE_S = 1.0
USER_COMMAND = "sleep"
MB = 1e6


def memory(proc: psutil.Process) -> tuple[float, float]:
    """(RSS, PSS) in MB."""
    info = proc.memory_full_info()
    return info.rss / MB, info.pss / MB


def host_side(launcher: psutil.Process) -> tuple[list[psutil.Process], int]:
    """The launcher's descendants that are not the user's command, and how
    many user commands there are."""
    helpers, users = [], 0
    for proc in launcher.children(recursive=True):
        if proc.name() == USER_COMMAND:
            users += 1
        else:
            helpers.append(proc)
    return helpers, users


def start_sleepers(daemon: Daemon, count: int) -> None:
    stub = daemon.jobs()
    for _ in range(count):
        job = stub.RunJob(pb.RunJobRequest(command="sleep", args=["300"]))
        if job.status != "RUNNING":
            raise AssertionError(f"job {job.jobUuid} is {job.status}")


def measure(daemon: Daemon, count: int, report: Report) -> None:
    time.sleep(SETTLE_S)
    daemon_proc, launcher = psutil.Process(daemon.proc.pid), psutil.Process(daemon.launcher_pid())
    (daemon_before, _), (launcher_before, _) = memory(daemon_proc), memory(launcher)
    start_sleepers(daemon, count)
    time.sleep(SETTLE_S)
    helpers, users = host_side(launcher)
    if users != count:
        raise AssertionError(f"{users} `sleep` processes running, wanted {count}")
    per_helper = [memory(p) for p in helpers]
    helper_rss, helper_pss = sum(r for r, _ in per_helper), sum(p for _, p in per_helper)
    daemon_growth = memory(daemon_proc)[0] - daemon_before
    launcher_growth = memory(launcher)[0] - launcher_before
    total = helper_rss + max(0.0, daemon_growth) + max(0.0, launcher_growth)
    report.figures = {
        "jobs": count,
        "helper_processes": len(helpers),
        "init_rss_mb_per_job": helper_rss / count,
        "init_pss_mb_per_job": helper_pss / count,
        "launcher_growth_mb_per_job": launcher_growth / count,
        "daemon_growth_mb_per_job": daemon_growth / count,
        "host_side_rss_mb_per_job": total / count,
    }
    report.baselines = {
        "launcher_idle_rss_mb": launcher_before,
        "daemon_idle_rss_mb": daemon_before,
    }
    report.notes.append("helpers: " + ", ".join(sorted({p.name() for p in helpers})))
    report.check("per job", total / count <= 2.0, "<= 2 MB RSS per job")


def main() -> None:
    args = parse_args(__doc__ or "")
    count = 10 if args.quick else 50
    report = Report("job_memory", args.quick)
    with running_daemon() as daemon:
        measure(daemon, count, report)
    report.emit()


if __name__ == "__main__":
    main()
