"""A restarting daemon listens before its jobs are restored, and a call made
meanwhile waits for them: it never sees a running job as missing or lost."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.serialization import job_to_json

from .conftest import RunningDaemon, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

UNTIL_RELEASED = "until [ -e /work/release ]; do sleep 0.05; done"
# Finished jobs kept from earlier runs: loading them keeps the restore busy
# long enough for a call to arrive while it runs.
RETAINED = 20_000
LOADED = "loaded "  # the daemon's line once every job is restored


def seed_finished(daemon: RunningDaemon, count: int) -> None:
    node_id = (daemon.root / "state" / "node-id").read_text().strip()
    ended = time.time() - 3600
    spec = JobSpec(command="true", name="earlier")
    jobs = (
        Job(str(uuid.uuid4()), spec, JobStatus.COMPLETED, node_id, ended, ended, 0, ended)
        for _ in range(count)
    )
    db = sqlite3.connect(daemon.root / "state" / "jobs.db", timeout=30)
    try:
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, NULL)",
                ((job.id, job_to_json(job)) for job in jobs),
            )
    finally:
        db.close()


def restored_lines(daemon: RunningDaemon, since: int) -> int:
    with daemon.log_path.open("rb") as log:
        log.seek(since)
        return sum(
            LOADED in line and "job(s) from state" in line
            for line in log.read().decode().splitlines()
        )


def test_a_call_during_the_restore_waits_and_sees_its_job_running(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon()
    stub = daemon.jobs()
    running = [
        str(stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", UNTIL_RELEASED])).jobUuid)
        for _ in range(3)
    ]
    for job_id in running:
        wait_status(stub, job_id, {"RUNNING"})
    daemon.kill9()
    seed_finished(daemon, RETAINED)
    mark = daemon.log_path.stat().st_size

    daemon.restart()  # returns once the port accepts connections
    during = restored_lines(daemon, mark) == 0
    stub = daemon.jobs()
    status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=running[0]), timeout=60)
    listed = {job.uuid: job.status for job in stub.ListJobs(pb.EmptyRequest(), timeout=60).jobs}

    assert during, "the daemon listened only after restoring its jobs"
    assert status.status == "RUNNING"
    assert all(listed.get(job_id) == "RUNNING" for job_id in running)
    for job_id in running:
        (daemon.workspace(job_id) / "release").touch()
    for job_id in running:
        assert wait_status(stub, job_id, {"COMPLETED"}, timeout=30).status == "COMPLETED"
