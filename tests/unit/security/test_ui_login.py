"""UiService.CreateUiLogin behind the real interceptor over mutual TLS: the
token is bound to the calling certificate's role and CN; a node without the
UI says so."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import grpc.aio
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.config.model import SecurityConfig
from joblet.daemon.ui_service import UiService
from joblet.security.interceptor import AuthInterceptor
from joblet.security.tls import server_credentials
from joblet.ui.config import UiConfig, login_key_path
from joblet.ui.tokens import read_token

if TYPE_CHECKING:
    from conftest import Pki


async def _serve(pki: Pki, service: UiService) -> AsyncIterator[str]:
    server = grpc.aio.server(interceptors=[AuthInterceptor()])
    pb_grpc.add_UiServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    security = SecurityConfig(pki.server.cert_pem, pki.server.key_pem, pki.ca.cert_pem)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(security))
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


async def _login(address: str, creds: grpc.ChannelCredentials) -> pb.CreateUiLoginResponse:
    async with grpc.aio.secure_channel(address, creds) as channel:
        stub = pb_grpc.UiServiceStub(channel)  # type: ignore[no-untyped-call]
        answer: pb.CreateUiLoginResponse = await stub.CreateUiLogin(pb.CreateUiLoginRequest())
        return answer


@pytest.mark.parametrize("role", ["viewer", "admin"])
async def test_the_token_carries_the_callers_role_and_cn(
    pki: Pki, tmp_path: Path, role: str
) -> None:
    (tmp_path / "config").mkdir()
    service = UiService(UiConfig(enabled=True, port=5180), tmp_path)
    async for address in _serve(pki, service):
        answer = await _login(address, pki.credentials(role, "carol"))
    assert (answer.url, answer.role) == ("http://127.0.0.1:5180", role)
    key = bytes.fromhex(login_key_path(tmp_path).read_text())
    grant = read_token(key, answer.token, time.time())
    assert (grant.role, grant.cn) == (role, "carol")
    assert grant.expires_at - time.time() <= 60


async def test_a_node_without_the_ui_says_so(pki: Pki, tmp_path: Path) -> None:
    async for address in _serve(pki, UiService(UiConfig(enabled=False), tmp_path)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _login(address, pki.credentials("admin"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ui.enabled" in (caught.value.details() or "")
