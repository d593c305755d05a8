"""The in-memory table of jobs and the queue of jobs waiting for a slot
(best effective priority first, see joblet.jobs.priority).

Plain code, no I/O: the manager decides with it, then acts.
"""

from __future__ import annotations

from joblet.jobs.ids import resolve_reference
from joblet.jobs.model import Job, JobStatus
from joblet.jobs.priority import DEFAULT_AGING_S, Waiting, WaitQueue
from joblet.jobs.state_machine import Event, transition


class JobRegistry:
    def __init__(self, aging_s: float = DEFAULT_AGING_S) -> None:
        self._jobs: dict[str, Job] = {}
        self._queue = WaitQueue(aging_s)
        # The running jobs' ids, kept as they change: every start decision
        # counts them, and tens of thousands of jobs may wait meanwhile.
        self._running: set[str] = set()
        self.starting = 0  # launches in flight, counted against the limit

    def add(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._note_running(job)

    def _note_running(self, job: Job) -> None:
        if job.status is JobStatus.RUNNING:
            self._running.add(job.id)
        else:
            self._running.discard(job.id)

    def get(self, job_id: str) -> Job:
        return self._jobs[job_id]

    def find(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def values(self) -> list[Job]:
        return list(self._jobs.values())

    def resolve(self, reference: str) -> Job:
        """The job a client named: by id, unique name or unique id prefix."""
        job = self._jobs.get(reference)  # a full id, as clients send it: no scan
        if job is not None:
            return job
        names = {job_id: job.spec.name for job_id, job in self._jobs.items()}
        return self._jobs[resolve_reference(reference, names)]

    def named(self, name: str) -> list[str]:
        """The ids of the jobs called `name`."""
        return sorted(job_id for job_id, job in self._jobs.items() if job.spec.name == name)

    def apply(self, job_id: str, event: Event) -> Job:
        """Apply a lifecycle event; raises IllegalTransition if it does not fit."""
        job = transition(self._jobs[job_id], event)
        self._jobs[job_id] = job
        self._note_running(job)
        if job.status is not JobStatus.QUEUED and job_id in self._queue:
            self._queue.remove(job_id)
        return job

    def remove(self, job_id: str) -> Job:
        if job_id in self._queue:
            self._queue.remove(job_id)
        self._running.discard(job_id)
        return self._jobs.pop(job_id)

    def all(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: (j.created_at, j.id))

    def enqueue(self, job_id: str) -> None:
        job = self._jobs[job_id]
        queued_at = job.queued_at or job.created_at
        self._queue.push(Waiting(job_id, job.spec.priority, queued_at, job.created_at))

    def queued_count(self) -> int:
        return len(self._queue)

    def queued(self) -> list[str]:
        """The queued jobs, best first."""
        return self._queue.ordered()

    @property
    def aging_s(self) -> float:
        return self._queue.aging_s

    def running(self) -> list[Job]:
        return [self._jobs[job_id] for job_id in self._running]

    def count_ahead(self, job: Waiting, at_most: int | None = None) -> int:
        """How many queued jobs would come before `job` (see WaitQueue.count_ahead)."""
        return self._queue.count_ahead(job, at_most)

    def running_count(self) -> int:
        return len(self._running) + self.starting

    def has_slot(self, limit: int) -> bool:
        return limit <= 0 or self.running_count() < limit

    def next_queued(self, limit: int) -> str | None:
        """The best queued job if a slot is free, else None."""
        if self._queue and self.has_slot(limit):
            return self._queue.pop()
        return None

    def first_queued(self) -> str | None:
        """The best queued job, left in the queue."""
        return self._queue.peek() if self._queue else None

    def __len__(self) -> int:
        return len(self._jobs)
