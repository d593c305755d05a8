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

import itertools
from collections.abc import AsyncIterator

from joblet.api import joblet_pb2 as pb
from joblet.errors import InvalidArgument
from joblet.metrics.hub import MetricsHub
from joblet.metrics.summary import in_range, summarize_points

NS = 1_000_000_000


async def stream_job_metrics(
    hub: MetricsHub, job_id: str, running: bool
) -> AsyncIterator[pb.JobMetricsSample]:
    """A running job: its latest sample, then live ones until it ends. A finished
    (or not yet started) job: its history, then the end of the stream."""
    if not running:
        for sample in await hub.history(job_id):
            yield sample
        return
    with hub.subscribe(job_id) as live:  # before reading recent: no sample falls between
        latest = hub.recent(job_id)[-1:]
        for sample in latest:
            yield sample
        last_ts = latest[0].timestamp if latest else 0
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
    hub: MetricsHub, job_id: str, request: pb.JobMetricsHistoryRequest
) -> pb.JobMetricsHistoryResponse:
    from_ns, to_ns = history_range_ns(request)
    samples = await hub.history(job_id, from_ns, to_ns)
    # A source may answer wider than asked; the contract is the asked range.
    chosen = [s for s in samples if in_range(s.timestamp, from_ns, to_ns)]
    if any(a.timestamp > b.timestamp for a, b in itertools.pairwise(chosen)):
        chosen.sort(key=lambda s: s.timestamp)
    return pb.JobMetricsHistoryResponse(samples=chosen)


async def get_job_metrics_summary(
    hub: MetricsHub, job_id: str, request: pb.JobMetricsSummaryRequest
) -> pb.JobMetricsSummaryResponse:
    """Over the last `periodSeconds` up to the job's newest sample (0: all of it)."""
    if request.periodSeconds < 0:
        raise InvalidArgument("periodSeconds must be >= 0")
    return summarize_points(await hub.summary_points(job_id), request.periodSeconds)
