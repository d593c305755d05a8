"""A method the node does not implement (the generated servicer base) answers
UNIMPLEMENTED through the interceptor and logs no traceback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import grpc.aio
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.config.model import SecurityConfig
from joblet.security.interceptor import AuthInterceptor
from joblet.security.tls import server_credentials

if TYPE_CHECKING:  # conftest is pytest's to import; only its type is needed here
    from conftest import Pki


@pytest.fixture
async def runtime_server(pki: Pki) -> AsyncIterator[str]:
    server = grpc.aio.server(interceptors=[AuthInterceptor()])
    pb_grpc.add_RuntimeServiceServicer_to_server(  # type: ignore[no-untyped-call]
        pb_grpc.RuntimeServiceServicer(), server
    )
    security = SecurityConfig(pki.server.cert_pem, pki.server.key_pem, pki.ca.cert_pem)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(security))
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


@pytest.mark.parametrize("method", ["ListRuntimes", "StreamingInstallRuntimeFromGithub"])
async def test_generated_base_method_is_unimplemented_without_a_traceback(
    runtime_server: str, pki: Pki, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    descriptor = pb.DESCRIPTOR.services_by_name["RuntimeService"].methods_by_name[method]
    caplog.set_level(logging.DEBUG)
    async with grpc.aio.secure_channel(runtime_server, pki.credentials("admin")) as channel:
        path = f"/joblet.RuntimeService/{method}"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            if descriptor.server_streaming:
                async for _ in channel.unary_stream(path)(b"", timeout=10):
                    pass
            else:
                await channel.unary_unary(path)(b"", timeout=10)
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert info.value.details() == f"{method} is not implemented by this node"
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
