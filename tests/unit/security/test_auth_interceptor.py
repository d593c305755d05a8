"""AuthInterceptor on a live grpc.aio server over real mutual TLS (see conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import grpc.aio
import pytest

from joblet.security.interceptor import NO_ROLE_MESSAGE, AuthInterceptor, get_caller

if TYPE_CHECKING:  # conftest is pytest's to import; only its type is needed here
    from conftest import Pki

TIMEOUT = 10


def _raw(data: bytes) -> bytes:
    return data


async def _unary(address: str, creds: grpc.ChannelCredentials, method: str) -> bytes:
    async with grpc.aio.secure_channel(address, creds) as channel:
        response: bytes = await channel.unary_unary(method, _raw, _raw)(b"req", timeout=TIMEOUT)
        return response


async def _stream(address: str, creds: grpc.ChannelCredentials, method: str) -> list[bytes]:
    async with grpc.aio.secure_channel(address, creds) as channel:
        return [r async for r in channel.unary_stream(method, _raw, _raw)(b"req", timeout=TIMEOUT)]


async def _denied(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_admin_may_write_and_servicer_sees_who_called(server_address: str, pki: Pki) -> None:
    creds = pki.credentials("admin", "alice")
    assert await _unary(server_address, creds, "/joblet.JobService/RunJob") == b"alice/admin"
    assert await _unary(server_address, creds, "/joblet.JobService/DeleteJob") == (
        b"sync:alice/admin"
    )


async def test_viewer_is_denied_a_write_rpc(server_address: str, pki: Pki) -> None:
    creds = pki.credentials("viewer", "bob")
    for method in ("RunJob", "DeleteJob"):
        error = await _denied(_unary(server_address, creds, f"/joblet.JobService/{method}"))
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
        assert error.details() == f"role viewer may not call {method}"


async def test_viewer_may_read(server_address: str, pki: Pki) -> None:
    creds = pki.credentials("viewer", "bob")
    assert await _unary(server_address, creds, "/joblet.JobService/ListJobs") == b"bob/viewer"
    assert await _unary(server_address, creds, "/joblet.JobService/GetJobStatus") == (
        b"sync:bob/viewer"
    )


async def test_unknown_ou_is_denied_even_reads(server_address: str, pki: Pki) -> None:
    creds = pki.credentials("guest", "eve")
    error = await _denied(_unary(server_address, creds, "/joblet.JobService/ListJobs"))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == NO_ROLE_MESSAGE


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("/joblet.JobService/GetJobLogs", [b"0:bob/viewer", b"1:bob/viewer", b"2:bob/viewer"]),
        ("/joblet.JobService/StreamJobMetrics", [b"a:bob/viewer", b"b:bob/viewer"]),
        ("/joblet.MonitoringService/StreamSystemMetrics", [b"written:bob/viewer"]),
    ],
)
async def test_unary_stream_handlers_of_every_kind_are_guarded(
    server_address: str, pki: Pki, method: str, expected: list[bytes]
) -> None:
    assert await _stream(server_address, pki.credentials("viewer", "bob"), method) == expected
    error = await _denied(_stream(server_address, pki.credentials("guest"), method))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED


async def _requests() -> AsyncIterator[bytes]:
    for part in (b"x", b"y"):
        yield part


async def test_request_streaming_handlers_are_guarded(server_address: str, pki: Pki) -> None:
    async with grpc.aio.secure_channel(server_address, pki.credentials("admin", "al")) as ch:
        upload = ch.stream_unary("/joblet.JobService/UploadThings", _raw, _raw)
        assert await upload(_requests(), timeout=TIMEOUT) == b"x+y:al/admin"
        chat = ch.stream_stream("/joblet.JobService/Chat", _raw, _raw)
        assert [r async for r in chat(_requests(), timeout=TIMEOUT)] == [
            b"x:al/admin",
            b"y:al/admin",
        ]
    # Denied calls are opened without a request iterator and never written to:
    # a client still sending when the server aborts races into INTERNAL on its
    # own side, which would hide the status the server actually sent.
    async with grpc.aio.secure_channel(server_address, pki.credentials("viewer")) as ch:
        # grpc-stubs predates the optional request_iterator of grpc.aio.
        up_call = ch.stream_unary("/joblet.JobService/UploadThings", _raw, _raw)(  # type: ignore[call-arg]
            timeout=TIMEOUT
        )
        chat_call = ch.stream_stream("/joblet.JobService/Chat", _raw, _raw)(  # type: ignore[call-arg]
            timeout=TIMEOUT
        )
        calls: list[tuple[grpc.aio.Call, str]] = [(up_call, "UploadThings"), (chat_call, "Chat")]
        for call, method in calls:
            assert await call.code() is grpc.StatusCode.PERMISSION_DENIED
            assert await call.details() == f"role viewer may not call {method}"


async def test_unknown_method_stays_unimplemented(server_address: str, pki: Pki) -> None:
    error = await _denied(
        _unary(server_address, pki.credentials("admin"), "/joblet.JobService/NoSuchRpc")
    )
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED


def test_no_caller_outside_an_rpc() -> None:
    assert get_caller() is None


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def test_each_handler_is_wrapped_once_and_a_new_one_again() -> None:
    interceptor = AuthInterceptor()
    first = grpc.unary_unary_rpc_method_handler(_echo)
    second = grpc.unary_unary_rpc_method_handler(_echo)
    current = [first]

    async def continuation(details: object) -> grpc.RpcMethodHandler[bytes, bytes]:
        return current[0]

    method = _Details("/joblet.JobService/RunJob")
    guarded = await interceptor.intercept_service(continuation, method)  # type: ignore[arg-type]
    assert guarded is not first  # the guard is in place
    assert await interceptor.intercept_service(continuation, method) is guarded  # type: ignore[arg-type]
    current[0] = second  # the server now serves this method with another handler
    regarded = await interceptor.intercept_service(continuation, method)  # type: ignore[arg-type]
    assert regarded is not guarded and regarded is not second


async def _echo(request: bytes, context: object) -> bytes:
    return request


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that sends no message


async def test_a_single_request_method_without_its_request_is_invalid_argument(
    server_address: str, pki: Pki
) -> None:
    async with grpc.aio.secure_channel(server_address, pki.credentials("admin")) as ch:
        call = ch.stream_unary("/joblet.JobService/RunJob", _raw, _raw)(_nothing(), timeout=TIMEOUT)
        assert await call.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert await call.details() == "RunJob: no request message"
