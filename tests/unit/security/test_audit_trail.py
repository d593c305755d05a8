"""The interceptor with a CRL and an audit trail, on a real grpc.aio server
over mutual TLS: revoked certificates are UNAUTHENTICATED, and each mutating
or refused call of every handler kind becomes one audit line."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import pytest
from conftest import serving

from joblet.security.audit_config import AuditConfig
from joblet.security.audit_log import AuditTrail
from joblet.security.interceptor import REVOKED_MESSAGE, AuthInterceptor
from joblet.security.revocation import cert_serial
from joblet.security.tls import channel_credentials

if TYPE_CHECKING:
    from conftest import Pki


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _call(
    address: str, creds: grpc.ChannelCredentials, method: str, stream: bool = False
) -> Any:
    async with grpc.aio.secure_channel(address, creds) as channel:
        if stream:
            return [r async for r in channel.unary_stream(method)(b"x")]
        return await channel.unary_unary(method)(b"x")


async def test_a_revoked_certificate_is_unauthenticated_and_recorded(
    pki: Pki, tmp_path: Path
) -> None:
    cert, key = pki.client("viewer", "eve")
    serial = cert_serial(cert)
    assert serial is not None
    revoked: set[int] = set()
    trail = AuditTrail(tmp_path / "audit.log", AuditConfig())
    interceptor = AuthInterceptor(revoked=lambda: frozenset(revoked), auditor=trail)
    creds = channel_credentials(pki.ca.cert_pem, cert, key)
    async with serving(pki, interceptor) as address:
        assert await _call(address, creds, "/joblet.JobService/ListJobs") == b"eve/viewer"
        revoked.add(serial)
        for method in ("/joblet.JobService/ListJobs", "/joblet.JobService/RunJob"):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _call(address, creds, method)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert refused.value.details() == REVOKED_MESSAGE
        # Another certificate of the same name and role is a different serial.
        assert await _call(address, pki.credentials("viewer", "eve"), "/joblet.JobService/ListJobs")
    trail.close()
    lines = _lines(tmp_path / "audit.log")
    assert [(line["rpc"].rsplit("/", 1)[-1], line["outcome"]) for line in lines] == [
        ("ListJobs", "UNAUTHENTICATED"), ("RunJob", "UNAUTHENTICATED"),
    ]  # fmt: skip
    assert {line["cn"] for line in lines} == {"eve"}
    assert {line["message"] for line in lines} == {REVOKED_MESSAGE}


async def test_every_handler_kind_is_recorded_with_its_outcome(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    trail = AuditTrail(path, AuditConfig())
    async with serving(pki, AuthInterceptor(auditor=trail)) as address:
        admin = pki.credentials("admin", "ann")
        await _call(address, admin, "/joblet.JobService/RunJob")  # coroutine
        await _call(address, admin, "/joblet.JobService/DeleteJob")  # plain, in a thread
        await _call(address, admin, "/joblet.JobService/GetJobLogs", stream=True)  # a read
        with pytest.raises(grpc.aio.AioRpcError):
            await _call(address, pki.credentials("viewer", "vic"), "/joblet.JobService/DeleteJob")
        with pytest.raises(grpc.aio.AioRpcError):
            await _call(
                address, pki.credentials("guest", "gus"), "/joblet.JobService/GetJobLogs", True
            )
    trail.close()
    got = [(x["cn"], x["role"], x["rpc"].rsplit("/", 1)[-1], x["outcome"]) for x in _lines(path)]
    assert got == [
        ("ann", "admin", "RunJob", "OK"),
        ("ann", "admin", "DeleteJob", "OK"),
        ("vic", "viewer", "DeleteJob", "PERMISSION_DENIED"),
        ("gus", "guest", "GetJobLogs", "PERMISSION_DENIED"),  # the OU as the certificate says
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


class EndingContext:
    """A servicer context whose call gRPC frees once the client cancels:
    reading its peer then is what crashed the daemon (here: an error)."""

    def __init__(self) -> None:
        self.gone = False

    def peer(self) -> str:
        if self.gone:
            raise AssertionError("the peer was read after the call was freed")
        return "ipv4:127.0.0.1:5000"


async def test_a_cancelled_stream_is_recorded_with_the_peer_read_at_its_start() -> None:
    from joblet.security.interceptor import _audited_stream

    told: list[tuple[str, str]] = []

    async def behaviour(request: Any, context: Any) -> Any:
        yield b"first"
        yield b"never"

    def tell(request: Any, context: Any, response: Any, error: BaseException | None) -> None:
        told.append((context.peer(), type(error).__name__))

    context = EndingContext()
    stream = _audited_stream(behaviour, tell)(b"x", context)
    assert await anext(stream) == b"first"
    context.gone = True  # the client cancelled; gRPC freed the call
    await stream.aclose()  # GeneratorExit: recorded as CANCELLED
    assert told == [("ipv4:127.0.0.1:5000", "GeneratorExit")]
