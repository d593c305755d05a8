"""A clean stop leaves running jobs to the launcher (live restore): SIGTERM
(what `systemctl stop` and `restart` send) or `joblet shutdown`, the daemon
exits 0, the jobs go on running and writing, and the next start re-attaches
them. `joblet shutdown --stop-jobs` and `joblet.stopJobsOnShutdown` stop them
instead. Waiting jobs (queued, scheduled, pending) wait for the next start
either way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, stored_record, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
# Prints 1, 2, 3, ... one line every 50 ms until released, then exits with 5.
COUNTER = "i=0; until [ -e /work/release ]; do i=$((i+1)); echo $i; sleep 0.05; done; exit 5"
UNTIL_RELEASED = "until [ -e /work/release ]; do sleep 0.05; done"
SHUTDOWN_REASON = "stopped by daemon shutdown"


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., RunningDaemon]]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    started: list[RunningDaemon] = []

    def make(**sections: Mapping[str, Any]) -> RunningDaemon:
        running = launch_daemon(tmp_path / f"d{len(started)}", sections)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


def run(stub: pb_grpc.JobServiceStub, script: str, **fields: object) -> str:
    request = pb.RunJobRequest(command="sh", args=["-c", script], **fields)  # type: ignore[arg-type]
    return str(stub.RunJob(request).jobUuid)


def logs(stub: pb_grpc.JobServiceStub, job_id: str) -> bytes:
    return b"".join(c.payload for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id)))


def counter_output(n: int) -> bytes:
    return "".join(f"{i}\n" for i in range(1, n + 1)).encode()


def log_size(daemon: RunningDaemon, job_id: str) -> int:
    return (daemon.root / "jobs" / job_id / "output.log").stat().st_size


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_log_grows(daemon: RunningDaemon, job_id: str) -> None:
    size = log_size(daemon, job_id)
    wait_for(lambda: log_size(daemon, job_id) > size, f"more output of {job_id}")


def job_processes(job_id: str) -> list[int]:
    """Host pids whose cgroup path names the job."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cgroup") as f:
                if job_id in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sigterm(daemon: RunningDaemon) -> int:
    """What `systemctl stop` does to the daemon; its exit code."""
    daemon.proc.send_signal(signal.SIGTERM)
    return daemon.proc.wait(timeout=60)


def shutdown(daemon: RunningDaemon, *flags: str) -> subprocess.CompletedProcess[str]:
    """`joblet shutdown` for the daemon's root, from the host."""
    argv = [sys.executable, "-m", "joblet.daemon.main", "shutdown"]
    return subprocess.run(
        [*argv, "--config", str(daemon.config_path), *flags],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def first_sample(daemon: RunningDaemon, job_id: str) -> pb.JobMetricsSample:
    stream = daemon.jobs().StreamJobMetrics(pb.JobMetricsRequest(uuid=job_id), timeout=60)
    try:
        return next(iter(stream))
    finally:
        stream.cancel()


def test_sigterm_leaves_running_jobs_and_the_next_start_reattaches_them(
    daemons: Callable[..., RunningDaemon],
) -> None:
    daemon = daemons(joblet={"maxConcurrentJobs": 2}, metrics={"interval": 1})
    stub = daemon.jobs()
    finished = run(stub, "echo fin")  # its end must be stored when the daemon exits
    wait_status(stub, finished, FINAL)
    counter = run(stub, COUNTER)
    blocker = run(stub, UNTIL_RELEASED)
    queued = run(stub, "echo queued-ran >> /work/count; cat /work/count")
    scheduled = run(stub, "echo scheduled-ran", schedule="8s")
    after_counter = pb.JobRequirement(jobUuid=counter, status="FINISHED")
    pending = run(stub, "echo pending-ran", requirements=[after_counter])
    for job_id in (counter, blocker):
        wait_status(stub, job_id, {"RUNNING"})
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=queued)).status == "QUEUED"
    wait_log_grows(daemon, counter)
    launcher = daemon.launcher_pid()
    pids = {job_id: job_processes(job_id) for job_id in (counter, blocker)}
    assert all(pids.values()), pids

    assert sigterm(daemon) == 0

    # Nothing stopped them: their processes and the launcher live on, and
    # the counter goes on writing with no daemon.
    assert alive(launcher)
    for job_id, before in pids.items():
        # Its init and shell are the same processes (a sleep may have ended).
        assert set(before) & set(job_processes(job_id)), job_id
    wait_log_grows(daemon, counter)
    assert "left 2 running job(s) to the launcher" in daemon.log_path.read_text()
    # The store has every job as the daemon left it: nothing marked ended.
    assert stored_record(daemon, counter)["status"] == "RUNNING"
    assert stored_record(daemon, finished)["status"] == "COMPLETED"
    assert stored_record(daemon, queued)["status"] == "QUEUED"
    assert stored_record(daemon, scheduled)["status"] == "SCHEDULED"
    assert stored_record(daemon, pending)["status"] == "PENDING"

    daemon.restart()
    stub = daemon.jobs()
    assert daemon.launcher_pid() == launcher  # found again, not replaced
    for job_id in (counter, blocker):
        assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status == "RUNNING"
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=queued)).status == "QUEUED"
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=pending)).status == "PENDING"
    wait_log_grows(daemon, counter)  # its output still arrives
    sample = first_sample(daemon, counter)  # sampled again
    assert sample.jobId == counter and sample.cgroupPath

    stub.StopJob(pb.StopJobReq(uuid=blocker))  # stop works on a re-attached job
    assert wait_status(stub, blocker, FINAL, timeout=30).status == "STOPPED"
    (daemon.workspace(counter) / "release").touch()
    status = wait_status(stub, counter, FINAL, timeout=30)
    assert (status.status, status.exitCode) == ("FAILED", 5)
    out = logs(stub, counter)
    assert out == counter_output(out.count(b"\n"))  # no gap, no duplicate
    assert wait_status(stub, queued, FINAL, timeout=30).status == "COMPLETED"
    assert logs(stub, queued) == b"queued-ran\n"  # ran exactly once
    assert wait_status(stub, scheduled, FINAL, timeout=30).status == "COMPLETED"
    assert logs(stub, scheduled) == b"scheduled-ran\n"
    assert wait_status(stub, pending, FINAL, timeout=30).status == "COMPLETED"
    assert logs(stub, pending) == b"pending-ran\n"


def test_joblet_shutdown_leaves_jobs_and_with_stop_jobs_stops_them(
    daemons: Callable[..., RunningDaemon],
) -> None:
    daemon = daemons(joblet={"stopGracePeriod": "1s"})
    stub = daemon.jobs()
    job_id = run(stub, "trap '' TERM; echo up; while :; do sleep 0.1; done")
    waiting = run(stub, "echo later", schedule="1h")
    wait_status(stub, job_id, {"RUNNING"})
    daemon_pid = daemon.proc.pid

    done = shutdown(daemon)
    assert done.returncode == 0, done.stderr
    assert f"(pid {daemon_pid}) exited" in done.stdout
    assert daemon.proc.wait(timeout=10) == 0
    assert job_processes(job_id)

    daemon.restart()
    stub = daemon.jobs()
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status == "RUNNING"
    launcher = daemon.launcher_pid()

    done = shutdown(daemon, "--stop-jobs")
    assert done.returncode == 0, done.stderr
    assert daemon.proc.wait(timeout=10) == 0
    assert not job_processes(job_id)  # it ignores SIGTERM: the kill after the grace
    wait_for(lambda: not alive(launcher), "the launcher to exit with its last job")

    refused = shutdown(daemon)  # none runs now
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"joblet: error: no joblet daemon serves {daemon.root}"

    daemon.restart()
    stub = daemon.jobs()
    status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
    assert (status.status, status.endReason) == ("STOPPED", SHUTDOWN_REASON)
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=waiting)).status == "SCHEDULED"


def test_stop_jobs_on_shutdown_stops_them_at_sigterm(
    daemons: Callable[..., RunningDaemon],
) -> None:
    daemon = daemons(joblet={"stopJobsOnShutdown": True})
    stub = daemon.jobs()
    job_id = run(stub, "echo up; while :; do sleep 0.1; done")
    wait_status(stub, job_id, {"RUNNING"})

    assert sigterm(daemon) == 0
    assert not job_processes(job_id)

    daemon.restart()
    status = daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
    assert (status.status, status.endReason) == ("STOPPED", SHUTDOWN_REASON)
    assert logs(daemon.jobs(), job_id) == b"up\n"
