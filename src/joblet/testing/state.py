"""State doubles: the memory backend (the contract suite keeps it honest) and a
recording `StateSink` for job-manager tests that need no helper process."""

from __future__ import annotations

from joblet.jobs.model import Job
from joblet.state.backends.memory import MemoryBackend

__all__ = ["MemoryBackend", "RecordingStateSink"]


class RecordingStateSink:
    """A `joblet.state.client.StateSink` that keeps every event and the latest jobs."""

    def __init__(self, jobs: list[Job] | None = None) -> None:
        self.jobs: dict[str, Job] = {job.id: job for job in jobs or []}
        self.events: list[tuple[str, str]] = []  # ("put" | "delete", job id), in order
        self.dropped = 0
        self.closed = False

    def put(self, job: Job, ttl_s: float = 0.0) -> None:
        self.events.append(("put", job.id))
        self.jobs[job.id] = job

    def delete(self, job_id: str) -> None:
        self.events.append(("delete", job_id))
        self.jobs.pop(job_id, None)

    async def load_all(self, timeout: float) -> list[Job]:
        return list(self.jobs.values())

    async def close(self, timeout: float = 5.0) -> None:
        self.closed = True
