"""Calls about a job another member of the cluster owns, answered by that
member: logs (follow too), live metrics, metric history (persist is per
node), stop, cancel and delete are forwarded to the owner (joblet.cluster.
forward). A job this node knows is answered here, as without a cluster; a
call that was forwarded to this node is never forwarded again.

An owner that cannot be reached gives UNAVAILABLE naming it; one holding no
live lease (crashed, or cut off from the store) has its QUEUED or SCHEDULED
jobs canceled in the store itself by StopJob and CancelJob.

A placed job no node has recorded yet (queued in the cluster, or claimed and
not started) is acted on in the store by whichever node is asked: StopJob
and CancelJob cancel it there (one script: a claim not yet started loses its
start), DeleteJob removes a canceled one; one a node already runs is asked
of that node."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import grpc.aio

from joblet.api import joblet_pb2 as pb
from joblet.cluster.forward import Owner, Peers, unreachable
from joblet.cluster.jobs import ClusterJobs
from joblet.cluster.queue import PlacementQueue
from joblet.cluster.registry import RedisLeases
from joblet.daemon import mappers
from joblet.daemon.cluster_reads import find_elsewhere
from joblet.daemon.errors import abort_with
from joblet.errors import FailedPrecondition, JobletError, NotFound, Unavailable
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.security.interceptor import current_caller
from joblet.security.roles import Caller
from joblet.state.backends.base import StateBackendError

log = logging.getLogger(__name__)
SERVICE = "joblet.JobService"
Context = Any  # grpc.aio.ServicerContext
_WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED)
_NO_SPEC = JobSpec(command="")


class Local(Protocol):
    def get(self, prefix: str) -> Job: ...


@dataclass(frozen=True)
class Target:
    owner: Owner
    job: Job  # as the store has it
    placed: bool = False  # only the cluster's store has it (placed, no node's record)


class Router:
    """Which member answers a call about a job, and the forwarding itself.
    `peers` None: this node has no node certificate (cluster.nodeCert), so a
    call about another member's job says so instead."""

    def __init__(
        self,
        local: Local,
        cluster: ClusterJobs,
        leases: RedisLeases,
        node_id: str,
        peers: Peers | None,
    ) -> None:
        self._local = local
        self._cluster = cluster
        self._leases = leases
        self._node_id = node_id
        self._peers = peers
        self.queue: PlacementQueue | None = None  # set when this node places jobs

    async def target(self, ref: str) -> Target | None:
        """The owner of the job `ref` names when another member owns it;
        None to answer here (this node's job, or one nobody has)."""
        try:
            self._local.get(ref)
            return None
        except NotFound:
            pass
        caller = current_caller.get(None)
        if caller is not None and caller.via:
            return None  # forwarded here already: answered here, never passed on
        job = await find_elsewhere(self._cluster, ref)
        if job is None:
            return None
        placed = await self._placed_only(job.id)
        if placed is not None:
            return Target(Owner(job.id, placed.node_id, ""), placed, placed=True)
        if job.node_id in ("", self._node_id):
            return None
        return Target(Owner(job.id, job.node_id, await self._address(job.node_id)), job)

    async def _placed_only(self, job_id: str) -> Job | None:
        if self.queue is None:
            return None
        try:
            return await self._cluster.placed_only(job_id)
        except StateBackendError as exc:
            raise Unavailable(f"the cluster's store is away: {exc}") from exc

    async def on_placed(self, target: Target, name: str, request: Any, context: Context) -> Any:
        """A call about a placed job only the store has: canceled or deleted
        there; a job a node started meanwhile is that node's to answer."""
        assert self.queue is not None
        job_id = target.job.id
        if name not in ("StopJob", "CancelJob", "DeleteJob") or getattr(
            request, "signal_only", False
        ):
            raise FailedPrecondition(
                f"job {job_id} is {target.job.status} in the cluster: no node has started it yet"
            )
        try:
            if name == "DeleteJob":
                return await self._delete_placed(job_id)
            outcome, where = await self.queue.cancel(
                job_id, f"canceled by {_caller().name}", time.time()
            )
        except StateBackendError as exc:
            raise Unavailable(f"the cluster's store is away: {exc}") from exc
        if outcome == 0:
            raise NotFound(f"job {job_id} not found")
        if outcome == 3:
            raise FailedPrecondition(f"job {job_id} is {where}: it has ended")
        if outcome == 2:  # a node started it meanwhile: that node answers
            return await self._on_node(job_id, where, name, request, context)
        log.info("canceled placed job %s in the cluster's store (by %s)", job_id, _caller().name)
        canceled = await self._cluster.placed_only(job_id)
        return canceled if canceled is not None else target.job

    async def _delete_placed(self, job_id: str) -> pb.DeleteJobRes:
        assert self.queue is not None
        done = await self.queue.delete(job_id)
        if done == 0:
            raise NotFound(f"job {job_id} not found")
        if done < 0:
            raise FailedPrecondition(
                f"job {job_id} is waiting in the cluster: stop or cancel it before deleting it"
            )
        return pb.DeleteJobRes(uuid=job_id, success=True, message=f"job {job_id} deleted")

    async def _on_node(
        self, job_id: str, node_id: str, name: str, request: Any, context: Context
    ) -> Any:
        if node_id == self._node_id:
            raise FailedPrecondition(f"job {job_id} is starting on this node: ask again")
        owner = Owner(job_id, node_id, await self._address(node_id))
        return await self.unary(Target(owner, Job(job_id, _NO_SPEC, JobStatus.RUNNING)),
                                f"/{SERVICE}/{name}", request, context)  # fmt: skip

    async def _address(self, node_id: str) -> str:
        """The owner's advertised address; "" when it holds no live lease."""
        try:
            lease = await self._leases.lease(node_id)
        except StateBackendError as exc:
            raise Unavailable(f"the cluster's store is away: {exc}") from exc
        return lease.address if lease is not None else ""

    def _peers_or_refuse(self, owner: Owner) -> Peers:
        if self._peers is None:
            raise unreachable(
                owner, "this node has no node certificate to forward the call with"
                " (cluster.nodeCert, cluster.nodeKey)",
            )  # fmt: skip
        return self._peers

    async def unary(self, target: Target, method: str, request: Any, context: Context) -> bytes:
        peers = self._peers_or_refuse(target.owner)
        return await peers.unary(
            target.owner, method, _retarget(request, target.owner.job_id), _caller(),
            context.time_remaining(),
        )  # fmt: skip

    def stream(
        self, target: Target, method: str, request: Any, context: Context
    ) -> AsyncIterator[bytes]:
        peers = self._peers_or_refuse(target.owner)
        return peers.stream(
            target.owner, method, _retarget(request, target.owner.job_id), _caller(),
            context.time_remaining(),
        )  # fmt: skip

    async def cancel_waiting(self, target: Target, failure: Unavailable) -> Job:
        """The job canceled in the store when its owner holds no live lease
        and the job only waits there; else `failure` (UNAVAILABLE naming the
        owner) stands."""
        if target.owner.address or target.job.status not in _WAITING:
            raise failure
        try:
            job = await self._cluster.cancel_in_store(target.job, _caller().name, time.time())
        except StateBackendError as exc:
            raise Unavailable(f"the cluster's store is away: {exc}") from exc
        log.info(
            "canceled job %s of unreachable node %s in the store (by %s)",
            job.id, target.owner.node_id, _caller().name,
        )  # fmt: skip
        return job


def _caller() -> Caller:
    caller = current_caller.get(None)
    assert caller is not None  # every call passed the interceptor
    return caller


def _retarget(request: Any, job_id: str) -> bytes:
    """The request naming the job by its full id (a prefix may name another
    job on the owner)."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.uuid = job_id
    return bytes(copy.SerializeToString())


def _either(reply: Any) -> bytes:
    """A reply serialized here, or the owner's bytes as they came."""
    return reply if isinstance(reply, bytes) else bytes(reply.SerializeToString())


Unary = Callable[[Any, Context], Awaitable[Any]]
Streaming = Callable[[Any, Context], AsyncIterator[Any]]
# The reply when the owner is unreachable and the job was canceled in the store.
CanceledReply = Callable[[Job], Any]


def unary_handler(
    router: Router,
    name: str,
    request_type: Any,
    local: Unary,
    canceled: CanceledReply | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    method = f"/{SERVICE}/{name}"

    async def handle(request: Any, context: Context) -> Any:
        try:
            target = await router.target(request.uuid)
            if target is None:
                return await local(request, context)
            if target.placed:
                reply = await router.on_placed(target, name, request, context)
                if isinstance(reply, Job):
                    assert canceled is not None
                    return canceled(reply)
                return reply
            try:
                return await router.unary(target, method, request, context)
            except Unavailable as failure:
                if canceled is None or getattr(request, "signal_only", False):
                    raise
                return canceled(await router.cancel_waiting(target, failure))
        except JobletError as exc:
            await abort_with(context, exc)
            raise AssertionError("abort returned") from exc  # pragma: no cover

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=request_type.FromString, response_serializer=_either
    )


def stream_handler(
    router: Router, name: str, request_type: Any, local: Streaming
) -> grpc.RpcMethodHandler[Any, Any]:
    method = f"/{SERVICE}/{name}"

    async def handle(request: Any, context: Context) -> AsyncIterator[Any]:
        try:
            target = await router.target(request.uuid)
        except JobletError as exc:
            await abort_with(context, exc)
            return
        if target is None:
            async for reply in local(request, context):
                yield reply
            return
        try:
            if target.placed:
                await router.on_placed(target, name, request, context)
            async for data in router.stream(target, method, request, context):
                yield data
        except JobletError as exc:
            await abort_with(context, exc)

    return grpc.unary_stream_rpc_method_handler(
        handle, request_deserializer=request_type.FromString, response_serializer=_either
    )


class Served(Protocol):
    """The JobService behaviours that answer for this node's own jobs."""

    def StopJob(self, request: pb.StopJobReq, context: Context) -> Awaitable[Any]: ...
    def CancelJob(self, request: pb.CancelJobReq, context: Context) -> Awaitable[Any]: ...
    def DeleteJob(self, request: pb.DeleteJobReq, context: Context) -> Awaitable[Any]: ...
    def StreamJobMetrics(
        self, request: pb.JobMetricsRequest, context: Context
    ) -> AsyncIterator[Any]: ...
    def get_job_logs_serialized(
        self, request: pb.GetJobLogsReq, context: Context
    ) -> AsyncIterator[bytes]: ...


def install(server: grpc.aio.Server, router: Router, jobs: Served, raw_history: Unary) -> None:
    """Replace the registered handlers of the forwarded methods (call after
    JobService and the serialized logs and history are installed; the
    interceptors still apply). `raw_history`: GetJobMetricsHistory's own."""
    handlers = {
        "StopJob": unary_handler(
            router, "StopJob", pb.StopJobReq, jobs.StopJob, mappers.stop_response
        ),
        "CancelJob": unary_handler(
            router, "CancelJob", pb.CancelJobReq, jobs.CancelJob, mappers.cancel_response
        ),
        "DeleteJob": unary_handler(router, "DeleteJob", pb.DeleteJobReq, jobs.DeleteJob),
        "GetJobMetricsHistory": unary_handler(
            router, "GetJobMetricsHistory", pb.JobMetricsHistoryRequest, raw_history
        ),
        "GetJobLogs": stream_handler(
            router, "GetJobLogs", pb.GetJobLogsReq, jobs.get_job_logs_serialized
        ),
        "StreamJobMetrics": stream_handler(
            router, "StreamJobMetrics", pb.JobMetricsRequest, jobs.StreamJobMetrics
        ),
    }
    server.add_registered_method_handlers(  # type: ignore[attr-defined]  # grpc >= 1.62, not in grpc-stubs
        SERVICE, handlers
    )
