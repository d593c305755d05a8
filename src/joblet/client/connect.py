"""Opening a channel to a node and waiting, at most `timeout_s`, for it to
connect, so that each way of failing gets its own one-line cause: a
certificate that is expired or not yet valid (checked before connecting), a
key of another certificate, a host name that does not resolve, a refused
connection, a TLS handshake the server refuses, or one it never answers."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from joblet.api import joblet_pb2 as pb
from joblet.client.config import NodeConfig
from joblet.client.credentials import check_certificate, check_key_pair
from joblet.client.errors import CliError

DEFAULT_TIMEOUT_S = 10.0
PROBE_METHOD = "/joblet.Connection/Probe"  # served by no one, on purpose


def connect(
    node: NodeConfig,
    factory: Callable[[NodeConfig], grpc.Channel],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    local_checks: bool = True,
) -> grpc.Channel:
    """A channel to `node` that has connected; CliError naming why not."""
    if local_checks:
        check_certificate(node)
    channel = factory(node)
    try:
        wait_connected(channel, node.address, timeout_s)
    except CliError as exc:
        channel.close()
        if local_checks and exc.code == "UNAVAILABLE":
            check_key_pair(node)  # a clearer cause than the handshake's, when it is this
        raise
    return channel


def wait_connected(channel: grpc.Channel, address: str, timeout_s: float) -> None:
    """Return once the node has answered a call on `channel`. A failure to
    connect is reported with the cause grpc gives; no answer within
    `timeout_s` as such.

    The call is to a method no server has: its UNIMPLEMENTED answer proves
    the connection and the TLS handshake, costs the daemon nothing and is
    not audited. (Watching the channel's connectivity instead costs a
    polling thread that `close` waits for, up to 200 ms of every command.)"""
    from joblet.client.connection import translate_rpc_error

    probe = channel.unary_unary(
        PROBE_METHOD,
        request_serializer=pb.EmptyRequest.SerializeToString,
        response_deserializer=pb.EmptyRequest.FromString,
    )
    try:
        probe(pb.EmptyRequest(), timeout=timeout_s)
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise CliError(
                f"joblet at {address} did not answer within {timeout_s:g}s (the connection or"
                " its TLS handshake never completed: a firewall dropping packets, or not a"
                " joblet daemon? --timeout sets how long to wait)",
                code="DEADLINE_EXCEEDED",
            ) from exc
        if code == grpc.StatusCode.UNAVAILABLE:
            raise translate_rpc_error(exc, address) from exc
        # Any other answer (UNIMPLEMENTED) came from the server: connected.
