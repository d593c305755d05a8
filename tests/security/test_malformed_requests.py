"""Garbage bytes to every RPC of the public services of a real daemon: each is
answered INVALID_ARGUMENT, logged in one line, and the daemon goes on."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.message import DecodeError
from integration.conftest import RunningDaemon

from joblet.api import joblet_pb2 as pb

pytestmark = pytest.mark.integration

# A field tag whose varint never ends: no message type parses it.
GARBAGE = b"\xff" * 16 + b"garbage"
METHODS = [
    (service.full_name, method)
    for service in pb.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


def _raw(data: bytes) -> bytes:
    return data


def test_garbage_is_not_a_message_of_any_request_type() -> None:
    for _, method in METHODS:
        request_class = getattr(pb, method.input_type.name)
        with pytest.raises(DecodeError):
            request_class.FromString(GARBAGE)


def test_garbage_to_every_rpc_is_invalid_argument(daemon: RunningDaemon) -> None:
    assert len(METHODS) > 30
    log_before = daemon.log_path.read_bytes()
    with daemon.channel() as channel:
        for service, method in METHODS:
            path = f"/{service}/{method.name}"
            if method.server_streaming:
                call = channel.unary_stream(path, _raw, _raw)(GARBAGE, timeout=30)
                with pytest.raises(grpc.RpcError) as info:
                    list(call)
            else:
                with pytest.raises(grpc.RpcError) as info:
                    channel.unary_unary(path, _raw, _raw)(GARBAGE, timeout=30)
            error = info.value
            assert isinstance(error, grpc.Call)
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (path, error.details())
            assert method.name in str(error.details())
    added = daemon.log_path.read_bytes()[len(log_before) :].decode(errors="replace")
    assert "Traceback" not in added, added
    lines = [line for line in added.splitlines() if "malformed request" in line]
    assert len(lines) == len(METHODS), added
    # still serving
    assert daemon.jobs().ListJobs(pb.EmptyRequest(), timeout=30) is not None
