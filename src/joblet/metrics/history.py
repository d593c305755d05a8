"""A job's metric history as serialized samples, and the response built from them
without parsing a single sample.

`JobMetricsHistoryResponse` has one field, `repeated JobMetricsSample samples = 1`,
whose wire form is also that of `repeated bytes samples = 1`; so a list of
stored samples becomes a valid response in C (`encode_history`, see
`views.RawSamples`), and the daemon sends those bytes as they are (see
`metrics_rpc`). Summaries read only the fields they use (`summary_series`).

    history = PersistHistory(grpc_socket)       # persist's query socket
    stamps, payloads = await history.timed_payloads(job_id)
    response_bytes = encode_history(payloads)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc

from joblet.api import joblet_pb2 as pb
from joblet.api import persist_pb2
from joblet.errors import InvalidArgument, Unavailable
from joblet.metrics import views
from joblet.metrics.summary import Point
from joblet.persist.query_client import unavailable


def encode_history(payloads: Sequence[bytes]) -> bytes:
    """A serialized JobMetricsHistoryResponse holding these serialized samples."""
    data: bytes = views.RawSamples(samples=payloads).SerializeToString()
    return data


def decode_samples(payloads: Sequence[bytes]) -> list[pb.JobMetricsSample]:
    """Parse many samples in one C call (faster than one ParseFromString each)."""
    return list(pb.JobMetricsHistoryResponse.FromString(encode_history(payloads)).samples)


def summary_points(response: bytes) -> list[Point]:
    """The summary points (summary.point) of the samples in a serialized
    JobMetricsHistoryResponse, parsing only the fields they use."""
    return [
        (
            s.timestamp,
            s.cpu.usagePercent,
            float(s.memory.current),
            s.io.readBPS + s.io.writeBPS,
            s.network.rxBPS + s.network.txBPS,
        )
        for s in views.HistoryView.FromString(response).samples
    ]


Series = tuple[list[float], list[float], list[float], list[float]]


def summary_series(response: bytes, count: int) -> Series:
    """cpu %, memory bytes, io B/s and network B/s (summary.point's series) of
    the `count` samples in a serialized JobMetricsHistoryResponse, in no
    particular order; one C parse, per-sample Python only for the sums."""
    merged = views.MergedHistory.FromString(response).samples
    cpu = list(merged.cpu.usagePercent)
    memory = list(map(float, merged.memory.current))
    io = [m.readBPS + m.writeBPS for m in merged.io]
    network = [m.rxBPS + m.txBPS for m in merged.network]
    cpu, memory, io, network = (  # with the zeros the wire leaves out
        values + [0.0] * (count - len(values)) for values in (cpu, memory, io, network)
    )
    return cpu, memory, io, network


class PersistHistory:
    """Stored samples of a job, straight from persist's query socket (a job with
    no stored sample has an empty history, not an error)."""

    def __init__(self, grpc_socket: Path) -> None:
        self._channel = grpc.aio.insecure_channel(
            f"unix:{grpc_socket}", options=[("grpc.max_receive_message_length", 256 << 20)]
        )
        self._query_metrics = self._channel.unary_stream(
            f"/{persist_pb2.DESCRIPTOR.services_by_name['PersistQuery'].full_name}/QueryMetrics",
            request_serializer=persist_pb2.QueryMetricsRequest.SerializeToString,
            response_deserializer=views.StoredResponse.FromString,
        )

    async def close(self) -> None:
        await self._channel.close(None)

    async def payloads(self, job_id: str, from_ns: int = 0, to_ns: int = 0) -> list[bytes]:
        """Serialized JobMetricsSamples with from_ns <= timestamp <= to_ns (0: open)."""
        return (await self.timed_payloads(job_id, from_ns, to_ns))[1]

    async def timed_payloads(
        self, job_id: str, from_ns: int = 0, to_ns: int = 0
    ) -> tuple[list[int], list[bytes]]:
        """Timestamps and serialized samples in the range, oldest first (persist
        keeps arrival order, which a wall clock set back would break)."""
        request = persist_pb2.QueryMetricsRequest(job_id=job_id, from_ns=from_ns, to_ns=to_ns)
        stamps: list[int] = []
        payloads: list[bytes] = []
        try:
            # Each response's samples come as two lists (views.StoredResponse):
            # no Python object per sample but the payload itself.
            async for response in self._query_metrics(request):
                stamps += response.samples.timestamp_ns
                payloads += response.samples.payload
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return [], []
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(exc.details() or "invalid range") from exc
            raise unavailable(exc.code(), exc.details() or str(exc.code())) from exc
        if len(stamps) != len(payloads):  # a zero timestamp or an empty sample
            raise Unavailable("persist: a stored sample without a timestamp or content")
        if stamps != sorted(stamps):
            order = sorted(range(len(stamps)), key=stamps.__getitem__)
            stamps, payloads = [stamps[i] for i in order], [payloads[i] for i in order]
        return stamps, payloads

    async def has_history(self, job_id: str) -> bool:
        """Whether persist holds any metric of the job. The range holds no
        sample, so persist reads only where the history is (for an archived
        job, its manifest), no segment."""
        request = persist_pb2.QueryMetricsRequest(job_id=job_id, from_ns=1, to_ns=1)
        try:
            async for _ in self._query_metrics(request):
                pass
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise unavailable(exc.code(), exc.details() or str(exc.code())) from exc
        return True

    async def history(self, job_id: str, from_ns: int, to_ns: int) -> list[pb.JobMetricsSample]:
        return decode_samples(await self.payloads(job_id, from_ns, to_ns))
