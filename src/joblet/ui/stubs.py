"""The API's calls for the UI, made from the services' descriptors on first
use: the generated stubs module defines every service of the API and costs
about 3 MB of the UI's idle memory, for the few calls the pages make."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor

from joblet.api import joblet_pb2 as pb


def _message_class(name: str) -> Any:
    return getattr(pb, name)  # requests and answers are top-level messages


def _multicallable(channel: grpc.aio.Channel, method: MethodDescriptor) -> Any:
    path = f"/{method.containing_service.full_name}/{method.name}"
    kind = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[(method.client_streaming, method.server_streaming)]
    return kind(
        path,
        request_serializer=_message_class(method.input_type.name).SerializeToString,
        response_deserializer=_message_class(method.output_type.name).FromString,
    )


class ServiceStub:
    """`stub.Method(request, timeout=...)` like a generated stub's."""

    def __init__(self, channel: grpc.aio.Channel, service: str) -> None:
        self._channel = channel
        self._methods = pb.DESCRIPTOR.services_by_name[service].methods_by_name
        self._calls: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._methods:
            raise AttributeError(name)
        call = self._calls.get(name)
        if call is None:
            call = self._calls[name] = _multicallable(self._channel, self._methods[name])
        return call
