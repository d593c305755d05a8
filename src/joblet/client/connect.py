"""Opening a channel to a node and waiting, at most `timeout_s`, for it to
connect, so that each way of failing gets its own one-line cause: a
certificate that is expired or not yet valid (checked before connecting), a
key of another certificate, a host name that does not resolve, a refused
connection, a TLS handshake the server refuses, or one it never answers."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc

from joblet.api import joblet_pb2 as pb
from joblet.client.config import NodeConfig
from joblet.client.credentials import check_certificate, check_key_pair
from joblet.client.errors import CliError

DEFAULT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 5.0
_SETTLED = frozenset(
    {
        grpc.ChannelConnectivity.READY,
        grpc.ChannelConnectivity.TRANSIENT_FAILURE,
        grpc.ChannelConnectivity.SHUTDOWN,
    }
)


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
    """Return once `channel` is ready. A failure to connect is reported with
    the cause grpc gives a call; no answer within `timeout_s` as such."""
    settled = threading.Event()
    last: list[grpc.ChannelConnectivity] = []

    def seen(state: grpc.ChannelConnectivity) -> None:
        last.append(state)
        if state in _SETTLED:
            settled.set()

    channel.subscribe(seen, try_to_connect=True)
    try:
        settled.wait(timeout_s)
    finally:
        channel.unsubscribe(seen)
    state = last[-1] if last else None
    if state is grpc.ChannelConnectivity.READY:
        return
    if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
        _probe(channel, address)  # raises the failure with grpc's own details
        return  # it connected meanwhile
    raise CliError(
        f"joblet at {address} did not answer within {timeout_s:g}s (the connection or its"
        " TLS handshake never completed: a firewall dropping packets, or not a joblet"
        " daemon? --timeout sets how long to wait)",
        code="DEADLINE_EXCEEDED",
    )


def _probe(channel: grpc.Channel, address: str) -> None:
    """One call that fails fast on a channel that could not connect, for its
    status details (the connectivity state carries none)."""
    from joblet.client.connection import JOB_SERVICE, translate_rpc_error

    method = channel.unary_unary(
        JOB_SERVICE + "GetJobStatus",
        request_serializer=pb.GetJobStatusReq.SerializeToString,
        response_deserializer=pb.GetJobStatusRes.FromString,
    )
    try:
        method(pb.GetJobStatusReq(uuid=""), timeout=PROBE_TIMEOUT_S)
    except grpc.RpcError as exc:
        failure = translate_rpc_error(exc, address)
        if failure.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN"):
            raise failure from exc
        # Any other answer (an empty id is refused) came from the daemon.
