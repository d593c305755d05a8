"""A workflow's status from its jobs' statuses. Pure.

PENDING until a job has left PENDING, RUNNING until every job is final.
Then: a workflow the user stopped is STOPPED, or CANCELED if nothing had
started; otherwise FAILED if a job FAILED or was STOPPED and no dependent
accepted that status, else COMPLETED. Jobs CANCELED because their
requirements could not hold (a `notify` job on a good night) are no failure.

A dependent accepts a failure when it ran *because of* it: it started and
its requirements would not all have held had the job COMPLETED (`NOT
load=COMPLETED`, `{load: [FAILED, STOPPED]}`). A dependent that runs either
way (`{load: FINISHED}`, a cleanup) does not hide the failure.
"""

from __future__ import annotations

from collections.abc import Mapping

from joblet.workflows.expressions import FINAL_SET, evaluate
from joblet.workflows.model import WorkflowJob, WorkflowSpec

PENDING = "PENDING"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
STOPPED = "STOPPED"
CANCELED = "CANCELED"


def workflow_status(
    job_statuses: Mapping[str, str], spec: WorkflowSpec, stopped_by_user: bool
) -> str:
    statuses = {job.name: job_statuses.get(job.name, PENDING) for job in spec.jobs}
    if any(status not in FINAL_SET for status in statuses.values()):
        return PENDING if all(s == PENDING for s in statuses.values()) else RUNNING
    if stopped_by_user:
        return CANCELED if all(s == CANCELED for s in statuses.values()) else STOPPED
    users = _dependents(spec)
    for name, status in statuses.items():
        if status in (FAILED, STOPPED) and not _accepted(name, users[name], statuses):
            return FAILED
    return COMPLETED


def _dependents(spec: WorkflowSpec) -> dict[str, list[WorkflowJob]]:
    users: dict[str, list[WorkflowJob]] = {job.name: [] for job in spec.jobs}
    for job in spec.jobs:
        for dep in job.dependencies:
            if dep in users:
                users[dep].append(job)
    return users


def _accepted(name: str, users: list[WorkflowJob], statuses: Mapping[str, str]) -> bool:
    had_completed = {**statuses, name: COMPLETED}
    for user in users:
        ran = statuses[user.name] != CANCELED
        if ran and not all(evaluate(r, had_completed) is True for r in user.requires):
            return True
    return False
