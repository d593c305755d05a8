"""Many jobs with big (but allowed) environments through a real daemon:
ListJobs still answers every client, and once the jobs are deleted the state
database gives the space back."""

from __future__ import annotations

import os
import time

import pytest
from integration.conftest import RunningDaemon

from joblet.api import joblet_pb2 as pb

pytestmark = pytest.mark.integration

JOBS = 80  # 80 x 960 KB of environment: more than gRPC's 64 MiB send limit
ENV = {f"V{n}": "x" * 120_000 for n in range(8)}


def state_bytes(daemon: RunningDaemon) -> int:
    path = daemon.root / "state" / "jobs.db"
    return sum(
        os.path.getsize(f"{path}{suffix}")
        for suffix in ("", "-wal")
        if os.path.exists(f"{path}{suffix}")
    )


def test_list_jobs_answers_with_many_big_jobs_and_the_store_shrinks_after(
    daemon: RunningDaemon,
) -> None:
    stub = daemon.jobs()
    ids = [
        stub.RunJob(
            pb.RunJobRequest(command="true", schedule="1h", environment=ENV), timeout=60
        ).jobUuid
        for _ in range(JOBS)
    ]
    listed = {job.uuid: job for job in stub.ListJobs(pb.EmptyRequest(), timeout=60).jobs}
    assert set(ids) <= set(listed)
    assert any(dict(listed[i].environment) == ENV for i in ids)  # as many as fit keep theirs
    assert all(listed[i].status == "SCHEDULED" for i in ids)
    assert dict(stub.GetJobStatus(pb.GetJobStatusReq(uuid=ids[-1])).environment) == ENV
    # Every record reached the store (writes are batched in the background).
    deadline = time.monotonic() + 60
    while state_bytes(daemon) < JOBS * 900_000:
        assert time.monotonic() < deadline, state_bytes(daemon)
        time.sleep(0.2)
    for job_id in ids:
        stub.CancelJob(pb.CancelJobReq(uuid=job_id), timeout=60)
        stub.DeleteJob(pb.DeleteJobReq(uuid=job_id), timeout=60)
    deadline = time.monotonic() + 60
    while state_bytes(daemon) > 8 * 1024 * 1024:
        assert time.monotonic() < deadline, state_bytes(daemon)
        time.sleep(0.2)
