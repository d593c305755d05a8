"""Which finished jobs to collect: pure code over a snapshot of the table.

A unit is a job on its own, or every job of one workflow: a workflow's jobs
go together, once the workflow is finished and all of them are. Units are
collected oldest end first: those past `max_age_s`, then more until at most
`max_jobs` finished jobs are left (jobs that cannot be collected yet count
too, so a node over its limit catches up as they become collectable).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from joblet.config.model import JobRetention


@dataclass(frozen=True)
class JobFacts:
    """What the plan needs of one job."""

    id: str
    final: bool
    ended_at: float
    group: str = ""  # its workflow's id; "" = none
    group_open: bool = False  # its workflow is not finished


@dataclass
class Unit:
    """Jobs collected together (a workflow's, or one job alone)."""

    group: str
    ended_at: float = 0.0
    ids: list[str] = field(default_factory=list)
    collectable: bool = True


def units_of(facts: Iterable[JobFacts]) -> tuple[list[Unit], int]:
    """The units, and how many finished jobs there are in all."""
    groups: dict[str, Unit] = {}
    alone: list[Unit] = []
    finished = 0
    for job in facts:
        finished += job.final
        if job.group:
            unit = groups.get(job.group)
            if unit is None:
                unit = groups[job.group] = Unit(job.group)
        else:
            unit = Unit("")
            alone.append(unit)
        unit.ids.append(job.id)
        unit.ended_at = max(unit.ended_at, job.ended_at)
        if not job.final or job.group_open:
            unit.collectable = False
    return alone + list(groups.values()), finished


def plan(facts: Iterable[JobFacts], policy: JobRetention, now: float) -> list[Unit]:
    """The units to collect now, oldest end first."""
    if not policy.enabled:
        return []
    units, finished = units_of(facts)
    ready = sorted((u for u in units if u.collectable), key=lambda u: (u.ended_at, u.group))
    doomed: list[Unit] = []
    for unit in ready:
        too_old = bool(policy.max_age_s) and now - unit.ended_at > policy.max_age_s
        too_many = bool(policy.max_jobs) and finished > policy.max_jobs
        if not (too_old or too_many):
            break  # sorted by end: nothing later is too old, and the count fits
        doomed.append(unit)
        finished -= len(unit.ids)
    return doomed
