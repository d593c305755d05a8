"""Many job records at once: written into a stopped daemon's SQLite state
store, so the daemon loads them at its next start as the records of jobs
it ran (what RunJob would take minutes to make)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import replace

from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.serialization import job_to_json

from .conftest import RunningDaemon


def finished_jobs(
    count: int, start: float, node_id: str, step: float = 0.01, name: str = "batch-step"
) -> list[Job]:
    """`count` COMPLETED jobs created `step` seconds apart from `start`."""
    jobs = []
    for n in range(count):
        at = start + n * step
        spec = JobSpec(command="python3", args=("step.py", str(n)), name=f"{name}-{n}")
        times = {"created_at": at, "started_at": at, "ended_at": at + 0.5}
        job = Job(str(uuid.uuid4()), spec, JobStatus.COMPLETED, node_id, **times)
        jobs.append(replace(job, end_reason="exit code 0"))
    return jobs


def node_id(daemon: RunningDaemon) -> str:
    return (daemon.root / "state" / "node-id").read_text().strip()


def seed(daemon: RunningDaemon, jobs: Iterable[Job]) -> None:
    """Stop the daemon cleanly, store `jobs`, start it again."""
    daemon.stop_daemon_only()
    db = sqlite3.connect(daemon.root / "state" / "jobs.db", timeout=30)
    try:
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, NULL)",
                ((job.id, job_to_json(job)) for job in jobs),
            )
    finally:
        db.close()
    daemon.restart()
