"""The jobs of the cluster's other nodes, read from the shared Redis: each
member's records under its own key prefix (the members table says which),
so ListJobs and GetJobStatus on any node answer for every node's jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from joblet.cluster.registry import RedisLeases
from joblet.errors import FailedPrecondition, NotFound
from joblet.jobs.ids import is_job_id, resolve_reference
from joblet.jobs.model import Job, JobStatus
from joblet.jobs.serialization import SerializationError, job_from_json, job_to_json
from joblet.jobs.state_machine import Canceled, transition
from joblet.state.client import RECORD_KEY_PREFIXES, WORKFLOW_KEY_PREFIX

log = logging.getLogger(__name__)
JOB_KEYS = "job:"  # the redis state backend's keys: <keyPrefix>job:<id>
_NOT_JOBS = (WORKFLOW_KEY_PREFIX, *RECORD_KEY_PREFIXES)


class Placed(Protocol):
    """The placed jobs no node has recorded yet (joblet.cluster.placed)."""

    async def jobs(self) -> list[Job]: ...
    async def job(self, job_id: str) -> Job | None: ...


class ClusterJobs:
    """`local`: whether this node's manager knows a job (it answers for
    those itself). `placed` is set once this node places jobs."""

    def __init__(
        self, leases: RedisLeases, node_id: str, local: Callable[[str], object] | None = None
    ) -> None:
        self._leases = leases
        self._node_id = node_id
        self._local = local
        self.placed: Placed | None = None

    async def others(self) -> list[Job]:
        """Every job the other members stored (this node's own come from its
        manager, which is ahead of its store), and the placed jobs no node
        has recorded yet."""
        jobs: list[Job] = []
        for node_id, key_prefix in sorted((await self._leases.members()).items()):
            if node_id != self._node_id:
                jobs += await self._jobs_under(key_prefix + JOB_KEYS)
        if self.placed is not None:
            known = {job.id for job in jobs}
            jobs += [
                job for job in await self.placed.jobs()
                if job.id not in known and not self._is_local(job.id)
            ]  # fmt: skip
        return jobs

    def _is_local(self, job_id: str) -> bool:
        return self._local is not None and self._local(job_id) is not None

    async def placed_only(self, job_id: str) -> Job | None:
        """The placed job `job_id` as its hash has it, when no node (this
        one included) has a record of it: only the store can act on it."""
        if self.placed is None or self._is_local(job_id):
            return None
        if await self._by_id(job_id) is not None:
            return None
        return await self.placed.job(job_id)

    async def find(self, wanted: str) -> Job:
        """The job of another member that `wanted` (id, unique prefix, name)
        names; NotFound or InvalidArgument (ambiguous) as for a local job."""
        if is_job_id(wanted):  # a full id: one read per member, not a scan of all
            found = await self._by_id(wanted)
            if found is None and self.placed is not None:
                found = await self.placed.job(wanted)
            if found is not None:
                return found
        jobs = {job.id: job for job in await self.others()}
        return jobs[resolve_reference(wanted, {i: j.spec.name for i, j in jobs.items()})]

    async def _by_id(self, job_id: str) -> Job | None:
        for node_id, key_prefix in sorted((await self._leases.members()).items()):
            if node_id == self._node_id:
                continue
            blob = await self._leases.record(key_prefix + JOB_KEYS + job_id)
            if blob is not None:
                try:
                    return job_from_json(blob)
                except SerializationError as exc:
                    log.warning("cluster: the record of job %s is unreadable: %s", job_id, exc)
        return None

    async def cancel_in_store(self, job: Job, by: str, at: float) -> Job:
        """Cancel another member's QUEUED or SCHEDULED job in the store
        itself (its owner cannot be reached): the record changes only if it
        is still the one read, so a write of the owner's in between wins."""
        prefix = (await self._leases.members()).get(job.node_id)
        if prefix is None:
            raise NotFound(f"job {job.id}: node {job.node_id} is not a member of the cluster")
        key = prefix + JOB_KEYS + job.id
        blob = await self._leases.record(key)
        if blob is None:
            raise NotFound(f"job {job.id} not found")
        stored = job_from_json(blob)
        canceled = canceled_record(stored, by, at)
        if not await self._leases.replace_record(key, blob, job_to_json(canceled)):
            raise FailedPrecondition(f"job {job.id} changed meanwhile: ask again")
        return canceled

    async def mark_lost(self, node_id: str, job_id: str, at: float) -> None:
        """A job of a lost node FAILED "node lost" in that node's own record
        (unless it has ended meanwhile); the node, should it return, finds
        its write of the job refused by the placement's token."""
        prefix = (await self._leases.members()).get(node_id)
        if prefix is None:
            return
        key = prefix + JOB_KEYS + job_id
        blob = await self._leases.record(key)
        if blob is None:
            return
        stored = job_from_json(blob)
        if stored.status.is_final:
            return
        lost = replace(stored, status=JobStatus.FAILED, end_reason="node lost", ended_at=at,
                       exit_code=-1, pid=0)  # fmt: skip
        await self._leases.replace_record(key, blob, job_to_json(lost))

    async def _jobs_under(self, prefix: str) -> list[Job]:
        jobs = []
        for key, blob in await self._leases.records(prefix):
            if key.startswith(_NOT_JOBS):
                continue
            try:
                jobs.append(job_from_json(blob))
            except SerializationError as exc:
                log.warning("cluster: skipping the unreadable record %s%s: %s", prefix, key, exc)
        return jobs


def canceled_record(job: Job, by: str, at: float) -> Job:
    """The job canceled where it waits (QUEUED or SCHEDULED); FailedPrecondition
    for one that may be running on its unreachable node, which only that node
    can stop."""
    if job.status not in (JobStatus.QUEUED, JobStatus.SCHEDULED):
        raise FailedPrecondition(
            f"job {job.id} is {job.status} on node {job.node_id}, which cannot be reached:"
            " only a queued or scheduled job is canceled without it"
        )
    return transition(job, Canceled(by=by, at=at))
