"""Node-to-node gRPC: a call about a job another member owns, passed to that
member as bytes (requests and replies are never parsed on the way), over
mutual TLS with this node's certificate (OU=node) and the name and role of
the caller it acts for in metadata."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import grpc.aio

from joblet.errors import JobletError, Unavailable
from joblet.security.roles import ON_BEHALF_NAME_KEY, ON_BEHALF_ROLE_KEY, Caller
from joblet.security.tls import channel_credentials

_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 2**31 - 1),
]


@dataclass(frozen=True)
class Owner:
    """The member that owns a job, and where to reach it ("" = no live lease)."""

    job_id: str
    node_id: str
    address: str


class Relayed(JobletError):
    """The owner's own answer (a status other than its being unreachable),
    passed on to the caller as it came."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code


def on_behalf(caller: Caller) -> tuple[tuple[str, str], ...]:
    return ((ON_BEHALF_ROLE_KEY, caller.role.value), (ON_BEHALF_NAME_KEY, caller.name))


def unreachable(owner: Owner, why: str) -> Unavailable:
    where = f" ({owner.address})" if owner.address else ""
    return Unavailable(f"job {owner.job_id} runs on node {owner.node_id}{where}: {why}")


def relayed(owner: Owner, exc: grpc.aio.AioRpcError) -> JobletError:
    """What the caller gets for the owner's error: its status as it came,
    but for a connection that failed, which names the owner."""
    if exc.code() is grpc.StatusCode.UNAVAILABLE:
        return unreachable(owner, f"the node cannot be reached ({exc.details()})")
    return Relayed(exc.code(), exc.details() or "")


class Peers:
    """One channel per member address, each opened at its first use and
    kept (a channel reconnects by itself) until `close`."""

    def __init__(self, ca_pem: str, cert_pem: str, key_pem: str, connect_s: float) -> None:
        self._credentials = channel_credentials(ca_pem, cert_pem, key_pem)
        self._connect_s = connect_s
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.aio.secure_channel(address, self._credentials, options=_OPTIONS)
            self._channels[address] = channel
        return channel

    async def _ready(self, owner: Owner) -> grpc.aio.Channel:
        """The owner's channel once connected; UNAVAILABLE naming the owner
        when it does not connect within the connect timeout."""
        if not owner.address:
            raise unreachable(owner, "the node holds no live lease in the cluster")
        channel = self._channel(owner.address)
        try:
            await asyncio.wait_for(channel.channel_ready(), self._connect_s)
        except TimeoutError:
            raise unreachable(
                owner, f"the node cannot be reached within {self._connect_s:g}s"
            ) from None
        return channel

    async def unary(
        self, owner: Owner, method: str, request: bytes, caller: Caller, timeout: float | None
    ) -> bytes:
        channel = await self._ready(owner)
        call = channel.unary_unary(method, None, None)
        try:
            reply = await call(request, metadata=on_behalf(caller), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise relayed(owner, exc) from None
        assert isinstance(reply, bytes)
        return reply

    async def stream(
        self, owner: Owner, method: str, request: bytes, caller: Caller, timeout: float | None
    ) -> AsyncIterator[bytes]:
        """The owner's replies as they come; closing the iterator (the caller
        went away) cancels the owner's call."""
        channel = await self._ready(owner)
        call = channel.unary_stream(method, None, None)(
            request, metadata=on_behalf(caller), timeout=timeout
        )
        try:
            async for reply in call:
                assert isinstance(reply, bytes)
                yield reply
        except grpc.aio.AioRpcError as exc:
            raise relayed(owner, exc) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close(None)
