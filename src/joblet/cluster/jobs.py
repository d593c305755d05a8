"""The jobs of the cluster's other nodes, read from the shared Redis: each
member's records under its own key prefix (the members table says which),
so ListJobs and GetJobStatus on any node answer for every node's jobs."""

from __future__ import annotations

import logging

from joblet.cluster.registry import RedisLeases
from joblet.jobs.ids import resolve_reference
from joblet.jobs.model import Job
from joblet.jobs.serialization import SerializationError, job_from_json
from joblet.state.client import RECORD_KEY_PREFIXES, WORKFLOW_KEY_PREFIX

log = logging.getLogger(__name__)
JOB_KEYS = "job:"  # the redis state backend's keys: <keyPrefix>job:<id>
_NOT_JOBS = (WORKFLOW_KEY_PREFIX, *RECORD_KEY_PREFIXES)


class ClusterJobs:
    def __init__(self, leases: RedisLeases, node_id: str) -> None:
        self._leases = leases
        self._node_id = node_id

    async def others(self) -> list[Job]:
        """Every job the other members stored (this node's own come from its
        manager, which is ahead of its store)."""
        jobs: list[Job] = []
        for node_id, key_prefix in sorted((await self._leases.members()).items()):
            if node_id != self._node_id:
                jobs += await self._jobs_under(key_prefix + JOB_KEYS)
        return jobs

    async def find(self, wanted: str) -> Job:
        """The job of another member that `wanted` (id, unique prefix, name)
        names; NotFound or InvalidArgument (ambiguous) as for a local job."""
        jobs = {job.id: job for job in await self.others()}
        return jobs[resolve_reference(wanted, {i: j.spec.name for i, j in jobs.items()})]

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
