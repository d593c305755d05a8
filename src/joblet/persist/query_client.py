"""Historical queries against persist's gRPC socket (grpc.aio)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from joblet.api import persist_pb2 as pb
from joblet.api import persist_pb2_grpc as pb_grpc
from joblet.errors import InvalidArgument, JobletError, NotFound, Unavailable
from joblet.logs.format import LogRecord, Stream


@dataclass(frozen=True)
class MetricSample:
    timestamp_ns: int
    payload: bytes  # a serialized joblet.JobMetricsSample


@dataclass(frozen=True)
class PersistStats:
    jobs: int
    log_bytes: int
    metric_bytes: int
    write_errors: int
    batches_written: int
    duplicates_skipped: int


# How persist's answers start when its history store (the s3 backend's
# bucket) failed: persist itself is up, so its message is passed on as is.
STORE_UNREACHABLE = "history store unreachable"


def unavailable(code: grpc.StatusCode, detail: str) -> Unavailable:
    """Persist away, or persist's history store away (its own message)."""
    if code == grpc.StatusCode.UNAVAILABLE and detail.startswith(STORE_UNREACHABLE):
        return Unavailable(detail)
    return Unavailable(f"persist: {detail}")


def _translate(exc: grpc.aio.AioRpcError) -> JobletError:
    detail = exc.details() or str(exc.code())
    if exc.code() == grpc.StatusCode.NOT_FOUND:
        return NotFound(detail)
    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(detail)
    return unavailable(exc.code(), detail)


# gRPC backs off exponentially (up to 2 minutes) after failed connects, and
# fails calls at once meanwhile: after persist was down a few seconds, reads
# would keep failing long after it is back. Reconnect every second at most,
# and let a call wait that long for the channel to come up.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
READY_TIMEOUT_S = 5.0


class PersistQueryClient:
    """`NotFound` when a job has no history; `Unavailable` when persist is away."""

    def __init__(self, socket_path: Path, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        self._socket_path = socket_path
        self._ready_timeout_s = ready_timeout_s
        self._channel = grpc.aio.insecure_channel(f"unix:{socket_path}", options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.PersistQueryStub(self._channel)  # type: ignore[no-untyped-call]

    async def _ready(self) -> None:
        """Wait (bounded) for a connection: persist may be restarting."""
        try:
            await asyncio.wait_for(self._channel.channel_ready(), self._ready_timeout_s)
        except TimeoutError as exc:
            raise Unavailable(
                f"persist: no answer on {self._socket_path} within {self._ready_timeout_s:g}s"
            ) from exc

    async def __aenter__(self) -> PersistQueryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(None)

    async def query_logs(
        self,
        job_id: str,
        *,
        since_ns: int = 0,
        until_ns: int = 0,
        stream: Stream | None = None,
        tail: int = 0,
    ) -> AsyncIterator[LogRecord]:
        request = pb.QueryLogsRequest(
            job_id=job_id,
            since_ns=since_ns,
            until_ns=until_ns,
            stream=int(stream) if stream else 0,  # type: ignore[arg-type]
            tail=tail,
        )
        await self._ready()
        call = self._stub.QueryLogs(request)
        try:
            async for response in call:
                for entry in response.entries:
                    yield LogRecord(Stream(entry.stream), entry.timestamp_ns, entry.data)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from exc
        finally:
            # A reader that stops early (a tail, a client gone) must end the
            # call: otherwise persist keeps streaming the rest of the log.
            call.cancel()

    async def query_metrics(
        self, job_id: str, from_ns: int = 0, to_ns: int = 0
    ) -> AsyncIterator[MetricSample]:
        request = pb.QueryMetricsRequest(job_id=job_id, from_ns=from_ns, to_ns=to_ns)
        await self._ready()
        call = self._stub.QueryMetrics(request)
        try:
            async for response in call:
                for sample in response.samples:
                    yield MetricSample(sample.timestamp_ns, sample.payload)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from exc
        finally:
            call.cancel()

    async def stats(self) -> PersistStats:
        await self._ready()
        try:
            reply = await self._stub.Stats(pb.StatsRequest())
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from exc
        return PersistStats(
            reply.jobs,
            reply.log_bytes,
            reply.metric_bytes,
            reply.write_errors,
            reply.batches_written,
            reply.duplicates_skipped,
        )
