"""Role-based authorization for every RPC of the grpc.aio server.

`HandlerCallDetails` carries no peer identity, so `AuthInterceptor` cannot
decide in `intercept_service` itself: it returns the method's handler with its
behaviour wrapped, and the wrapper checks `context.auth_context()` first. The
wrapper keeps the original's kind (coroutine, async generator or plain
function) because grpc.aio picks how to drive a handler by inspecting it.
Each method's handler is wrapped once and reused; the check itself runs on
every call, because a call carries no connection identity that could be
trusted to stand for an earlier call's certificate.

While the behaviour runs, `current_caller` holds who called, so servicers can
record e.g. "stopped by <name>" without threading the context through.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import grpc.aio

from joblet.security.roles import Caller, caller_from_auth_context, is_allowed

current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "joblet_current_caller", default=None
)

Behaviour = Callable[..., Any]
_HandlerFactory = Callable[..., "grpc.RpcMethodHandler[Any, Any]"]  # stubs-only generic

NO_ROLE_MESSAGE = "client certificate has no known role (OU)"


def get_caller() -> Caller | None:
    """The caller of the RPC being served, or None outside one."""
    return current_caller.get()


def denial_message(caller: Caller | None, method: str) -> str:
    if caller is None:
        return NO_ROLE_MESSAGE
    return f"role {caller.role} may not call {method.rsplit('/', 1)[-1]}"


async def authorize(context: grpc.aio.ServicerContext[Any, Any], method: str) -> Caller:
    """The caller, or abort the RPC with PERMISSION_DENIED."""
    caller = caller_from_auth_context(context.auth_context())
    if caller is None or not is_allowed(caller.role, method):
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, denial_message(caller, method))
    return caller


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Admits a call only if the peer certificate's role may use the method."""

    def __init__(self) -> None:
        # method -> (the server's handler, its guarded twin). Wrapping costs
        # more than a small RPC; the server hands out the same handler object
        # for a method on every call, so each is wrapped once. Only methods the
        # server has a handler for get an entry, which bounds the table.
        self._guarded: dict[str, tuple[Any, grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: let grpc answer UNIMPLEMENTED
            return handler
        method = handler_call_details.method
        known = self._guarded.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        guarded = wrap_handler(handler, method)
        self._guarded[method] = (handler, guarded)
        return guarded


def wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any], method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler with its behaviour guarded by `authorize`."""
    kinds: tuple[tuple[Behaviour | None, _HandlerFactory], ...] = (
        (handler.unary_unary, grpc.unary_unary_rpc_method_handler),
        (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
        (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
        (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
    )
    for behaviour, factory in kinds:
        if behaviour is not None:
            return factory(
                _guard(behaviour, method, handler.response_streaming),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


def _guard(behaviour: Behaviour, method: str, response_streaming: bool) -> Behaviour:
    if inspect.isasyncgenfunction(behaviour):
        return _guard_async_gen(behaviour, method)
    if inspect.iscoroutinefunction(behaviour):
        return _guard_coroutine(behaviour, method)
    if response_streaming:
        return _guard_sync_stream(behaviour, method)
    return _guard_sync(behaviour, method)


def _guard_coroutine(behaviour: Behaviour, method: str) -> Behaviour:
    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        token = current_caller.set(await authorize(context, method))
        try:
            return await behaviour(request, context)
        finally:
            current_caller.reset(token)

    return guarded


def _guard_async_gen(behaviour: Behaviour, method: str) -> Behaviour:
    async def guarded(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        # grpc.aio drives the generator from the RPC's own task, so the value
        # set here is what the behaviour sees across every resumption.
        current_caller.set(await authorize(context, method))
        async for response in behaviour(request, context):
            yield response

    return guarded


def _guard_sync(behaviour: Behaviour, method: str) -> Behaviour:
    # A plain function (such as a generated servicer base method) would block
    # the event loop; run it in a thread, as grpc.aio itself would, and
    # asyncio.to_thread carries current_caller over.
    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        current_caller.set(await authorize(context, method))
        return await asyncio.to_thread(behaviour, request, context)

    return guarded


def _guard_sync_stream(behaviour: Behaviour, method: str) -> Behaviour:
    async def guarded(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        current_caller.set(await authorize(context, method))
        responses: Iterator[Any] = iter(await asyncio.to_thread(behaviour, request, context))
        done = object()
        while (item := await asyncio.to_thread(next, responses, done)) is not done:
            yield item

    return guarded
