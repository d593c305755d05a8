"""The `PersistQuery` gRPC service: historical logs and metrics, streamed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from functools import partial
from typing import TypeVar

import grpc

from joblet.api import persist_pb2 as pb
from joblet.api import persist_pb2_grpc as pb_grpc
from joblet.errors import InvalidArgument
from joblet.persist.archive.backend import HistoryBackend, LocalBackend
from joblet.persist.archive.objects import ArchiveError
from joblet.persist.ingest import IngestStats
from joblet.persist.query_client import STORE_UNREACHABLE
from joblet.persist.store import (
    HistoryStore,
    LogFilter,
    Record,
    Snapshot,
    check_job_id,
    read_logs,
    read_metrics,
)

T = TypeVar("T")


def log_filter(request: pb.QueryLogsRequest) -> LogFilter:
    if request.since_ns < 0 or request.until_ns < 0:
        raise InvalidArgument("since_ns and until_ns must not be negative")
    kinds = frozenset({int(request.stream)}) if request.stream else None
    return LogFilter(request.since_ns, request.until_ns, kinds, request.tail)


async def _chunks(chunks: Iterator[T], *, first_inline: bool = False) -> AsyncIterator[T]:
    """Run a blocking generator (file reads, inflate) off the event loop.

    `first_inline`: take the first chunk on the loop itself, for a read whose
    first step is known to be small: it saves two thread hand-offs, which on
    a busy host cost more than the step.
    """
    done = object()
    if first_inline:
        first = next(chunks, done)
        if first is done:
            return
        yield first  # type: ignore[misc]
    while (chunk := await asyncio.to_thread(next, chunks, done)) is not done:
        yield chunk  # type: ignore[misc]


# A response stays well under gRPC's 4 MiB default, however much one read
# brought (an archived segment's ranged read can bring several MiB at once).
MAX_RESPONSE_BYTES = 1 << 20


def _log_responses(records: list[Record]) -> Iterator[pb.QueryLogsResponse]:
    # add() builds each entry in place, instead of a LogEntry the response copies.
    response = pb.QueryLogsResponse()
    size = 0
    for r in records:
        if size and size + len(r.data) > MAX_RESPONSE_BYTES:
            yield response
            response = pb.QueryLogsResponse()
            size = 0
        response.entries.add(stream=r.kind, timestamp_ns=r.timestamp_ns, data=r.data)
        size += len(r.data) + 32
    if size:
        yield response


class PersistQueryServicer(pb_grpc.PersistQueryServicer):
    def __init__(
        self,
        logs: HistoryStore,
        metrics: HistoryStore,
        stats: IngestStats,
        backend: HistoryBackend | None = None,
        counters: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._logs = logs
        self._metrics = metrics
        self._stats = stats
        self._backend = backend or LocalBackend()
        self._counters = counters or dict

    async def QueryLogs(
        self, request: pb.QueryLogsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[pb.QueryLogsResponse]:
        if request.follow:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "follow is not supported")
        try:
            flt = log_filter(request)
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        snapshot = await self._snapshot(
            self._logs, "logs", request.job_id, context, from_start=flt == LogFilter()
        )
        # Unfiltered, the first chunk is the first block or two of the first
        # segment (see segment.FIRST_READ); a filter may have to read far.
        plain = flt == LogFilter() and snapshot.opener is None
        try:
            async for records in _chunks(read_logs(snapshot, flt), first_inline=plain):
                for response in _log_responses(records):
                    yield response
        except ArchiveError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{STORE_UNREACHABLE}: {exc}")

    async def QueryMetrics(
        self, request: pb.QueryMetricsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[pb.QueryMetricsResponse]:
        snapshot = await self._snapshot(self._metrics, "metrics", request.job_id, context)
        chunks = _chunks(read_metrics(snapshot, request.from_ns, request.to_ns))
        try:
            async for records in chunks:
                # add() builds each sample in place: a third of the CPU of making
                # MetricSample objects that the response then copies.
                response = pb.QueryMetricsResponse()
                add = response.samples.add
                for r in records:
                    add(timestamp_ns=r.timestamp_ns, payload=r.data)
                yield response
        except ArchiveError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{STORE_UNREACHABLE}: {exc}")

    async def Stats(
        self, request: pb.StatsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.StatsResponse:
        log_usage = list(self._logs.usage())
        metric_usage = list(self._metrics.usage())
        return pb.StatsResponse(
            jobs=len({u.job_id for u in [*log_usage, *metric_usage]}),
            log_bytes=sum(u.stored_bytes for u in log_usage),
            metric_bytes=sum(u.stored_bytes for u in metric_usage),
            write_errors=self._stats.write_errors,
            batches_written=self._stats.batches_written,
            duplicates_skipped=self._stats.duplicates_skipped,
            **self._counters(),
        )

    async def _snapshot(
        self,
        store: HistoryStore,
        kind: str,
        job_id: str,
        context: grpc.aio.ServicerContext[object, object],
        *,
        from_start: bool = False,
    ) -> Snapshot:
        """Local segments first; what is not here, from the archive."""
        try:
            snapshot = store.snapshot(check_job_id(job_id))
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if snapshot is not None:
            return replace(snapshot, fallback=self._backend.fallback(kind, job_id))
        if snapshot is None:
            try:
                snapshot = await asyncio.to_thread(
                    partial(self._backend.remote_snapshot, kind, job_id, from_start=from_start)
                )
            except (ArchiveError, ValueError) as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"{STORE_UNREACHABLE}: {exc}")
        if snapshot is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no history for job {job_id}")
        return snapshot
