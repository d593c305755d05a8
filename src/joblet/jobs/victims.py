"""Which running jobs give their slot to a job that would have to wait.

Pure code: the manager passes what runs and what the new job needs, and
stops the jobs chosen here (joblet.jobs.preemption carries it out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Running:
    job_id: str
    priority: int
    preemptible: bool
    started_at: float
    leaving: bool = False  # already being stopped for another job


def choose_victims(
    priority: int, running: Sequence[Running], needed: int, blocker: str = ""
) -> tuple[str, ...]:
    """The fewest running jobs, lowest priority first (the most recently
    started first among equals: it loses the least work), whose slots let a
    job of `priority` start when `needed` more slots are wanted. Only
    preemptible jobs of strictly lower priority qualify, never one already
    leaving. Nothing when it cannot be done in full, or when the job could
    not start anyway (`blocker` says why): no job is stopped for nothing."""
    if needed <= 0 or blocker:
        return ()
    candidates = sorted(
        (r for r in running if r.preemptible and not r.leaving and r.priority < priority),
        key=lambda r: (r.priority, -r.started_at, r.job_id),
    )
    if len(candidates) < needed:
        return ()
    return tuple(r.job_id for r in candidates[:needed])


def slots_needed(running: int, leaving: int, limit: int, ahead: int) -> int:
    """More slots a job needs to start when `running` jobs hold slots (of
    `limit`; 0 = unlimited), `leaving` of them already on their way out, and
    `ahead` waiting jobs come before it."""
    if limit <= 0:
        return 0
    return max(0, running - leaving - limit + ahead + 1)
