"""The job-metrics RPCs of JobService, given the MetricsHub (the sample source).
JobService resolves the job first (NOT_FOUND, a unique prefix), then delegates:

    async def StreamJobMetrics(self, request, context):
        job = self._manager.get(request.uuid)
        async for sample in metrics_rpc.stream_job_metrics(self._hub, job.id, job_running):
            yield sample

Timestamps: JobMetricsSample.timestamp is Unix nanoseconds; the history
request's fromTimestamp / toTimestamp are Unix seconds (0 leaves that end open).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from joblet.api import joblet_pb2 as pb
from joblet.daemon.errors import abort_with
from joblet.errors import InvalidArgument, JobletError
from joblet.metrics.hub import MetricsHub

NS = 1_000_000_000


async def stream_job_metrics(
    hub: MetricsHub, job_id: str, running: bool, *, archived: bool = False
) -> AsyncIterator[pb.JobMetricsSample]:
    """A running job: its latest sample, then live ones until it ends. A finished
    (or not yet started) job: its history, then the end of the stream; so is a
    job this node never ran (`archived`: read from the history store)."""
    if not running:
        for sample in await hub.history(job_id, archived=archived):
            yield sample
        return
    with hub.subscribe(job_id) as live:  # before reading recent: no sample falls between
        latest = hub.latest(job_id)
        if latest is not None:
            yield latest
        last_ts = latest.timestamp if latest is not None else 0
        async for sample in live:
            if sample.timestamp > last_ts:
                yield sample


def history_range_ns(request: pb.JobMetricsHistoryRequest) -> tuple[int, int]:
    if request.fromTimestamp < 0 or request.toTimestamp < 0:
        raise InvalidArgument("fromTimestamp and toTimestamp must be >= 0 (Unix seconds)")
    if request.toTimestamp and request.fromTimestamp > request.toTimestamp:
        raise InvalidArgument("fromTimestamp is after toTimestamp")
    return request.fromTimestamp * NS, request.toTimestamp * NS


async def get_job_metrics_history(
    hub: MetricsHub, job_id: str, request: pb.JobMetricsHistoryRequest, *, archived: bool = False
) -> pb.JobMetricsHistoryResponse:
    """The parsed response (for callers in this process; the RPC sends bytes)."""
    return pb.JobMetricsHistoryResponse.FromString(
        await job_metrics_history_bytes(hub, job_id, request, archived=archived)
    )


async def job_metrics_history_bytes(
    hub: MetricsHub, job_id: str, request: pb.JobMetricsHistoryRequest, *, archived: bool = False
) -> bytes:
    """A serialized JobMetricsHistoryResponse, built from the stored samples'
    bytes without parsing them (24 h of 5 s samples is 17,280 of them), the
    asked range exactly, oldest first. `archived`: a job this node never ran."""
    from_ns, to_ns = history_range_ns(request)
    return await hub.history_bytes(job_id, from_ns, to_ns, archived=archived)


def raw_history_handler(
    resolve: Callable[[str], tuple[str, bool]], hub: MetricsHub
) -> grpc.RpcMethodHandler[pb.JobMetricsHistoryRequest, bytes]:
    """GetJobMetricsHistory sending the bytes of `job_metrics_history_bytes` as
    they are. `resolve(uuid)` gives the job's id and whether it is archived, or
    raises NotFound (the manager's `history_ref`). Register it after JobService,
    under the same service name: it replaces only that method's handler (the
    interceptors still apply):

        server.add_registered_method_handlers(
            "joblet.JobService", {"GetJobMetricsHistory": raw_history_handler(...)})
    """

    async def handle(request: pb.JobMetricsHistoryRequest, context: Any) -> bytes:
        try:
            job_id, archived = resolve(request.uuid)
            return await job_metrics_history_bytes(hub, job_id, request, archived=archived)
        except JobletError as exc:
            await abort_with(context, exc)
            raise AssertionError("abort returned") from exc  # pragma: no cover

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=pb.JobMetricsHistoryRequest.FromString,
        response_serializer=_as_is,
    )


def install_raw_history(
    server: grpc.aio.Server, resolve: Callable[[str], tuple[str, bool]], hub: MetricsHub
) -> None:
    """Replace the registered GetJobMetricsHistory of JobService (call after
    `add_JobServiceServicer_to_server`) with `raw_history_handler`."""
    server.add_registered_method_handlers(  # type: ignore[attr-defined]  # grpc >= 1.62, not in grpc-stubs
        "joblet.JobService", {"GetJobMetricsHistory": raw_history_handler(resolve, hub)}
    )


def _as_is(data: bytes) -> bytes:
    return data


async def get_job_metrics_summary(
    hub: MetricsHub,
    job_id: str,
    request: pb.JobMetricsSummaryRequest,
    *,
    archived: bool = False,
) -> pb.JobMetricsSummaryResponse:
    """Over the last `periodSeconds` up to the job's newest sample (0: all of it)."""
    if request.periodSeconds < 0:
        raise InvalidArgument("periodSeconds must be >= 0")
    return await hub.summary(job_id, request.periodSeconds, archived=archived)
