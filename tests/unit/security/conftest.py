"""A real grpc.aio server over mutual TLS on 127.0.0.1, with `AuthInterceptor`
and a tiny generic service whose handlers echo who called them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest

from joblet.config.model import SecurityConfig
from joblet.security import certs
from joblet.security.interceptor import AuthInterceptor, get_caller
from joblet.security.tls import channel_credentials, server_credentials


@dataclass(frozen=True)
class Pki:
    ca: certs.CertKeyPair
    server: certs.CertKeyPair
    other_ca: certs.CertKeyPair

    def client(self, role: str, name: str = "tester") -> tuple[str, str]:
        return certs.issue_client_cert(self.ca.cert_pem, self.ca.key_pem, role, name)

    def credentials(self, role: str, name: str = "tester") -> grpc.ChannelCredentials:
        cert, key = self.client(role, name)
        return channel_credentials(self.ca.cert_pem, cert, key)


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca = certs.generate_ca()
    server = certs.issue_server_cert(ca.cert_pem, ca.key_pem, [])
    return Pki(ca=ca, server=server, other_ca=certs.generate_ca("intruder CA"))


def _whoami() -> bytes:
    caller = get_caller()
    return b"nobody" if caller is None else f"{caller.name}/{caller.role}".encode()


async def _unary(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return _whoami()


def _sync_unary(request: bytes, context: Any) -> bytes:
    # Like a generated servicer base method: a plain function.
    return b"sync:" + _whoami()


async def _async_gen(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for i in range(3):
        yield b"%d:" % i + _whoami()


async def _writer(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.write(b"written:" + _whoami())


def _sync_stream(request: bytes, context: Any) -> Iterator[bytes]:
    yield b"a:" + _whoami()
    yield b"b:" + _whoami()


async def _stream_unary(requests: AsyncIterator[bytes], context: Any) -> bytes:
    parts = [r async for r in requests]
    return b"+".join(parts) + b":" + _whoami()


async def _stream_stream(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for r in requests:
        yield r + b":" + _whoami()


def _handlers() -> list[grpc.GenericRpcHandler[Any, Any]]:
    jobs = {
        "RunJob": grpc.unary_unary_rpc_method_handler(_unary),
        "ListJobs": grpc.unary_unary_rpc_method_handler(_unary),
        "DeleteJob": grpc.unary_unary_rpc_method_handler(_sync_unary),
        "GetJobStatus": grpc.unary_unary_rpc_method_handler(_sync_unary),
        "GetJobLogs": grpc.unary_stream_rpc_method_handler(_async_gen),
        "StreamJobMetrics": grpc.unary_stream_rpc_method_handler(_sync_stream),
        "UploadThings": grpc.stream_unary_rpc_method_handler(_stream_unary),
        "Chat": grpc.stream_stream_rpc_method_handler(_stream_stream),
    }
    monitoring = {"StreamSystemMetrics": grpc.unary_stream_rpc_method_handler(_writer)}
    return [
        grpc.method_handlers_generic_handler("joblet.JobService", jobs),
        grpc.method_handlers_generic_handler("joblet.MonitoringService", monitoring),
    ]


@contextlib.asynccontextmanager
async def serving(pki: Pki, interceptor: AuthInterceptor) -> AsyncIterator[str]:
    """The test service behind `interceptor` on a free port: its address."""
    server = grpc.aio.server(interceptors=[interceptor])
    server.add_generic_rpc_handlers(_handlers())
    security = SecurityConfig(pki.server.cert_pem, pki.server.key_pem, pki.ca.cert_pem)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(security))
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


@pytest.fixture
async def server_address(pki: Pki) -> AsyncIterator[str]:
    async with serving(pki, AuthInterceptor()) as address:
        yield address
