"""Reads that answer for the whole cluster (cluster.name): this node's jobs
from its manager, the other members' from the shared store. A store that is
away leaves the answer at this node's own jobs (logged), never an error."""

from __future__ import annotations

import logging
from collections.abc import Callable

from joblet.cluster.jobs import ClusterJobs
from joblet.errors import NotFound
from joblet.jobs.manager import JobManager
from joblet.jobs.model import Job
from joblet.state.backends.base import StateBackendError

log = logging.getLogger(__name__)


async def other_jobs(cluster: ClusterJobs | None) -> list[Job]:
    if cluster is None:
        return []
    try:
        return await cluster.others()
    except StateBackendError as exc:
        log.warning("cluster: the other nodes' jobs are left out: %s", exc)
        return []


async def find_elsewhere(cluster: ClusterJobs | None, wanted: str) -> Job | None:
    """The other member's job `wanted` names; None when no member has it.
    An ambiguous reference raises InvalidArgument, as on one node."""
    if cluster is None:
        return None
    try:
        return await cluster.find(wanted)
    except NotFound:
        return None
    except StateBackendError as exc:
        log.warning("cluster: cannot look for job %s on the other nodes: %s", wanted, exc)
        return None


async def with_other_jobs(
    manager: JobManager, cluster: ClusterJobs | None
) -> tuple[list[Job], Callable[[str], Job | None]]:
    """A snapshot of this node's jobs and the other members', and how to
    find one of them by id (this node's as they are now), for a listing."""
    others = {job.id: job for job in await other_jobs(cluster)}

    def find(job_id: str) -> Job | None:
        return manager.find(job_id) or others.get(job_id)

    return manager.snapshot() + list(others.values()), find
