"""A placed job that no node has recorded yet, as the cluster lists it: its
hash in the store (state, request, claimer) made into a Job, so GetJobStatus
and the listings show it on every node (nodeId "" while it waits)."""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.message import DecodeError

from joblet.api import joblet_pb2 as pb
from joblet.cluster import placement as p
from joblet.cluster.queue import PlacementQueue
from joblet.errors import JobletError
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.validation import validate_run_request

WAITING = "placed: waiting for a node with room"
_NO_LIMIT = 1 << 62  # the request was checked when it was accepted


def placed_job(job_id: str, fields: Mapping[str, bytes], spec: JobSpec) -> Job:
    """The job as its hash has it; `spec` is its request's (see spec_of)."""
    state = _text(fields.get("state"))
    node = _text(fields.get("node"))
    status, wait = _status(state, node)
    return Job(
        job_id,
        spec,
        status,
        node_id=node if status is not JobStatus.QUEUED else "",
        created_at=_number(fields.get("created")),
        ended_at=_number(fields.get("ended")) if status.is_final else 0.0,
        end_reason=_text(fields.get("reason")) if status.is_final else "",
        wait_reason=wait,
    )


def _status(state: str, node: str) -> tuple[JobStatus, str]:
    if state == p.QUEUED:
        return JobStatus.QUEUED, WAITING
    if state == p.CLAIMED:  # taken, about to start: still waiting, as far as a caller sees
        return JobStatus.QUEUED, f"placed: starting on node {node}"
    try:
        return JobStatus(state), ""
    except ValueError:
        return JobStatus.FAILED, ""


def spec_of(raw: bytes | None, host_cpus: int) -> JobSpec:
    """The request as accepted; an unreadable one (a newer node's) still
    lists, by its command alone."""
    if not raw:
        return JobSpec(command="")
    try:
        request = pb.RunJobRequest.FromString(raw)
    except DecodeError:
        return JobSpec(command="")
    try:
        return validate_run_request(request, max(host_cpus, 1), _NO_LIMIT)
    except (JobletError, ValueError):
        return JobSpec(command=request.command, args=tuple(request.args), name=request.name)


def _text(raw: bytes | None) -> str:
    return raw.decode(errors="replace") if raw else ""


def _number(raw: bytes | None) -> float:
    try:
        return float(raw or 0)
    except ValueError:
        return 0.0


class PlacedView:
    """The placed jobs of the store as Jobs (see placement.listed_key). A
    request never changes: each is read into a spec once, kept while its
    job is listed (a listing of many queued jobs pays for the new ones)."""

    def __init__(self, queue: PlacementQueue, host_cpus: int) -> None:
        self._queue = queue
        self._host_cpus = host_cpus
        self._specs: dict[str, JobSpec] = {}

    def _spec(self, job_id: str, fields: Mapping[str, bytes]) -> JobSpec:
        spec = self._specs.get(job_id)
        return spec if spec is not None else spec_of(fields.get("request"), self._host_cpus)

    async def jobs(self) -> list[Job]:
        listed = await self._queue.listed(self._specs.__contains__)
        specs = {i: self._spec(i, fields) for i, fields in listed.items()}
        self._specs = specs  # the jobs no longer listed are dropped
        return [placed_job(i, fields, specs[i]) for i, fields in listed.items()]

    async def job(self, job_id: str) -> Job | None:
        fields = await self._queue.placed(job_id)
        return placed_job(job_id, fields, self._spec(job_id, fields)) if fields else None
