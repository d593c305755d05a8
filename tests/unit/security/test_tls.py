"""Mutual TLS as the server enforces it: who may connect, and with which TLS versions."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import grpc.aio
import pytest

from joblet.security import certs
from joblet.security.tls import channel_credentials

if TYPE_CHECKING:  # conftest is pytest's to import; only its type is needed here
    from conftest import Pki

LIST_JOBS = "/joblet.JobService/ListJobs"


def _raw(data: bytes) -> bytes:
    return data


async def _call_error(address: str, creds: grpc.ChannelCredentials) -> grpc.aio.AioRpcError:
    async with grpc.aio.secure_channel(address, creds) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary(LIST_JOBS, _raw, _raw)(b"", timeout=10)
    return info.value


async def test_client_with_certificate_from_our_ca_connects(server_address: str, pki: Pki) -> None:
    async with grpc.aio.secure_channel(server_address, pki.credentials("admin", "a")) as channel:
        assert await channel.unary_unary(LIST_JOBS, _raw, _raw)(b"", timeout=10) == b"a/admin"


async def test_client_without_certificate_cannot_connect(server_address: str, pki: Pki) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert_pem.encode())
    error = await _call_error(server_address, creds)
    assert error.code() is grpc.StatusCode.UNAVAILABLE


async def test_client_certificate_from_another_ca_is_refused(server_address: str, pki: Pki) -> None:
    other = pki.other_ca
    cert, key = certs.issue_client_cert(other.cert_pem, other.key_pem, "admin", "mallory")
    error = await _call_error(server_address, channel_credentials(pki.ca.cert_pem, cert, key))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


async def test_client_that_does_not_trust_the_server_refuses_it(
    server_address: str, pki: Pki
) -> None:
    cert, key = pki.client("admin")
    error = await _call_error(server_address, channel_credentials(pki.other_ca.cert_pem, cert, key))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


def _handshake(address: str, pki: Pki, tmp: Path, version: ssl.TLSVersion | None) -> str | None:
    """Handshake with a plain `ssl` client (optionally pinned to one TLS version)."""
    cert, key = pki.client("admin")
    (tmp / "c.pem").write_text(cert + key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=pki.ca.cert_pem)
    ctx.load_cert_chain(tmp / "c.pem")
    ctx.set_alpn_protocols(["h2"])
    if version is not None:
        # Let our side offer old versions, so only the server can refuse them.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = version
    host, port = address.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.version()


async def test_tls_1_3_is_negotiated_and_1_2_accepted(
    server_address: str, pki: Pki, tmp_path: Path
) -> None:
    assert await asyncio.to_thread(_handshake, server_address, pki, tmp_path, None) == "TLSv1.3"
    tls12 = ssl.TLSVersion.TLSv1_2
    assert await asyncio.to_thread(_handshake, server_address, pki, tmp_path, tls12) == "TLSv1.2"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
async def test_tls_below_1_2_is_refused_by_the_server(
    server_address: str, pki: Pki, tmp_path: Path, version: ssl.TLSVersion
) -> None:
    with pytest.raises(ssl.SSLError) as info:
        await asyncio.to_thread(_handshake, server_address, pki, tmp_path, version)
    # BoringSSL hangs up on the hello (or alerts); a client-side refusal to offer
    # the version would read NO_PROTOCOLS_AVAILABLE instead.
    message = str(info.value).upper()
    assert "EOF" in message or "PROTOCOL_VERSION" in message


def test_the_old_version_client_does_offer_it(pki: Pki, tmp_path: Path) -> None:
    """Control for the test above: the same pinned client completes a TLS 1.1
    handshake with a server that allows it, so the refusal is gRPC's."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    (tmp_path / "s.pem").write_text(pki.server.cert_pem + pki.server.key_pem)
    server_ctx.load_cert_chain(tmp_path / "s.pem")
    server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with conn, server_ctx.wrap_socket(conn, server_side=True):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        version = _handshake(f"127.0.0.1:{port}", pki, tmp_path, ssl.TLSVersion.TLSv1_1)
        thread.join(timeout=10)
    assert version == "TLSv1.1"
