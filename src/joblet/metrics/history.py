"""A job's metric history as serialized samples, and the response built from them
without parsing a single sample.

`JobMetricsHistoryResponse` has one field, `repeated JobMetricsSample samples = 1`.
On the wire that is, per sample, the tag 0x0a, the length as a varint and the
sample's bytes, which is also exactly how `repeated bytes samples = 1` encodes.
So a message type with that one bytes field (built here at import, not part of
the public API) serializes a list of stored samples into a valid response in C,
and the daemon sends those bytes as they are (see `metrics_rpc`).

    history = PersistHistory(grpc_socket)       # persist's query socket
    payloads = await history.payloads(job_id, from_ns, to_ns)
    response_bytes = encode_history(payloads)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from joblet.api import joblet_pb2 as pb
from joblet.api import persist_pb2, persist_pb2_grpc
from joblet.errors import InvalidArgument, Unavailable


def _raw_samples_class() -> Any:
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="joblet/metrics/raw_samples.proto", package="joblet.metrics.raw", syntax="proto3"
    )
    message = proto.message_type.add(name="RawSamples")
    message.field.add(name="samples", number=1, type=field.TYPE_BYTES, label=field.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("joblet.metrics.raw.RawSamples")
    )


_RawSamples = _raw_samples_class()


def encode_history(payloads: Sequence[bytes]) -> bytes:
    """A serialized JobMetricsHistoryResponse holding these serialized samples."""
    data: bytes = _RawSamples(samples=payloads).SerializeToString()
    return data


def decode_samples(payloads: Sequence[bytes]) -> list[pb.JobMetricsSample]:
    """Parse many samples in one C call (faster than one ParseFromString each)."""
    return list(pb.JobMetricsHistoryResponse.FromString(encode_history(payloads)).samples)


class PersistHistory:
    """Stored samples of a job, straight from persist's query socket (a job with
    no stored sample has an empty history, not an error)."""

    def __init__(self, grpc_socket: Path) -> None:
        self._channel = grpc.aio.insecure_channel(
            f"unix:{grpc_socket}", options=[("grpc.max_receive_message_length", 256 << 20)]
        )
        self._stub = persist_pb2_grpc.PersistQueryStub(self._channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._channel.close(None)

    async def payloads(self, job_id: str, from_ns: int = 0, to_ns: int = 0) -> list[bytes]:
        """Serialized JobMetricsSamples with from_ns <= timestamp <= to_ns (0: open)."""
        request = persist_pb2.QueryMetricsRequest(job_id=job_id, from_ns=from_ns, to_ns=to_ns)
        out: list[bytes] = []
        try:
            async for response in self._stub.QueryMetrics(request):
                out += [s.payload for s in response.samples]
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return []
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(exc.details() or "invalid range") from exc
            raise Unavailable(f"persist: {exc.details() or exc.code()}") from exc
        return out

    async def history(self, job_id: str, from_ns: int, to_ns: int) -> list[pb.JobMetricsSample]:
        return decode_samples(await self.payloads(job_id, from_ns, to_ns))
