"""GetJobLogs answered with DataChunks serialized by hand.

A DataChunk is one bytes field, so its wire form is a two-to-four-byte
header and the output itself. Building that header into the join that makes
the chunk spares the two further copies of every byte that constructing and
serializing a `pb.DataChunk` would cost: at hundreds of MB/s of output those
copies are a large share of the daemon's CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from joblet.api import joblet_pb2 as pb
from joblet.ipc.framing import encode_varint

if TYPE_CHECKING:
    from joblet.daemon.job_service import JobService

_PAYLOAD = bytes([1 << 3 | 2])  # field 1, length-delimited


def data_chunk_head(size: int) -> bytes:
    """What precedes `size` bytes of output in a serialized DataChunk."""
    # proto3 leaves an empty field out; so do we, byte for byte.
    return _PAYLOAD + encode_varint(size) if size else b""


def serialized_logs_handler(service: JobService) -> grpc.RpcMethodHandler[Any, bytes]:
    return grpc.unary_stream_rpc_method_handler(
        service.get_job_logs_serialized,
        request_deserializer=pb.GetJobLogsReq.FromString,
        response_serializer=_as_is,
    )


def install_serialized_logs(server: grpc.aio.Server, service: JobService) -> None:
    """Replace the registered GetJobLogs of JobService (call after
    `add_JobServiceServicer_to_server`; the interceptors still apply)."""
    server.add_registered_method_handlers(  # type: ignore[attr-defined]  # grpc >= 1.62, not in grpc-stubs
        "joblet.JobService", {"GetJobLogs": serialized_logs_handler(service)}
    )


def _as_is(data: bytes) -> bytes:
    return data
