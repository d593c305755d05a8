"""Role-based authorization for every RPC of the grpc.aio server.

`HandlerCallDetails` carries no peer identity, so `AuthInterceptor` cannot
decide in `intercept_service` itself: it returns the method's handler with its
behaviour wrapped, and the wrapper checks `context.auth_context()` first. The
wrapper keeps the original's kind (coroutine, async generator or plain
function) because grpc.aio picks how to drive a handler by inspecting it.
Each method's handler is wrapped once and reused; the check itself runs on
every call, because a call carries no connection identity that could be
trusted to stand for an earlier call's certificate.

Revocation: a peer certificate whose serial is in the daemon's CRL is refused
UNAUTHENTICATED before its role is looked at (the TLS handshake cannot check
a CRL in grpc-python). Auditing: each call's caller, request, response and
ending go to an optional `CallAuditor`, which decides what to record.

While the behaviour runs, `current_caller` holds who called, so servicers can
record e.g. "stopped by <name>" without threading the context through.

A method with a single request message is served as a request-streaming one
(the same on the wire), so that the role is checked before the body is read:
grpc.aio reads a unary request whole, up to the server's receive limit, before
any code of ours runs, and that limit must fit RunJob with its uploads. The
guard then reads the one message as bytes, holds it to the method's own limit
(RESOURCE_EXHAUSTED) and parses it itself: a body that is not the method's
message is INVALID_ARGUMENT with one log line, not a traceback and UNKNOWN.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, NoReturn, Protocol, cast

import grpc
import grpc.aio

from joblet.security.roles import (
    PEER_CERT_KEY,
    Caller,
    Role,
    caller_from_auth_context,
    delegated_caller,
    is_allowed,
)

current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "joblet_current_caller", default=None
)

log = logging.getLogger(__name__)

Behaviour = Callable[..., Any]
_HandlerFactory = Callable[..., "grpc.RpcMethodHandler[Any, Any]"]  # stubs-only generic
Context = grpc.aio.ServicerContext[Any, Any]
# Who called and the request (or request iterator) the behaviour gets.
Admit = Callable[[Any, Context], Awaitable[tuple[Caller, Any]]]
Deserializer = Callable[[bytes], Any]

NO_ROLE_MESSAGE = "client certificate has no known role (OU)"
REVOKED_MESSAGE = "certificate revoked"
DEFAULT_RECEIVE_LIMIT = 4 * 1024 * 1024  # gRPC's own default, for a method not named

# The serial numbers revoked right now (the daemon's CRL, reloaded as it changes).
RevokedSerials = Callable[[], frozenset[int]]


def nothing_revoked() -> frozenset[int]:
    return frozenset()


class CallAuditor(Protocol):
    """Told about every guarded call once it has ended (or was refused)."""

    def called(
        self,
        method: str,
        context: Context,
        *,
        caller: Caller | None,
        request: Any,
        response: Any,
        error: BaseException | None,
    ) -> None: ...


def get_caller() -> Caller | None:
    """The caller of the RPC being served, or None outside one."""
    return current_caller.get()


def denial_message(caller: Caller | None, method: str) -> str:
    if caller is None:
        return NO_ROLE_MESSAGE
    return f"role {caller.role} may not call {method.rsplit('/', 1)[-1]}"


def is_revoked(auth_context: Mapping[str, Any], revoked: frozenset[int]) -> bool:
    """Whether the peer's certificate is one of the `revoked` serials."""
    if not revoked:  # the usual case: no certificate is parsed at all
        return False
    from joblet.security.revocation import cert_serial  # cryptography, only when needed

    pem = next(iter(auth_context.get(PEER_CERT_KEY) or ()), None)
    return pem is not None and cert_serial(pem) in revoked


async def authorize(
    context: grpc.aio.ServicerContext[Any, Any],
    method: str,
    revoked: RevokedSerials = nothing_revoked,
) -> Caller:
    """The caller, or abort the RPC: UNAUTHENTICATED for a revoked
    certificate, PERMISSION_DENIED for a role that may not call `method`."""
    auth_context = context.auth_context()
    if is_revoked(auth_context, revoked()):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REVOKED_MESSAGE)
    peer = caller_from_auth_context(auth_context)
    caller = peer
    if peer is not None and peer.role is Role.NODE:
        # Forwarded by another node: the rights are those of whom it acts for.
        caller = delegated_caller(peer, context.invocation_metadata() or (), method)
        if caller is None:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"node {peer.name} may call only a forwarded method, naming an admin or"
                " viewer caller",
            )
    if caller is None or not is_allowed(caller.role, method):
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, denial_message(caller, method))
    assert caller is not None
    return caller


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Admits a call only if the peer certificate's role may use the method,
    and a single request message only up to the method's receive limit:
    `receive_limits` by full method name, `default_receive_limit` for the rest.
    `revoked` gives the serials to refuse; `auditor` hears of every call."""

    def __init__(
        self,
        receive_limits: Mapping[str, int] | None = None,
        default_receive_limit: int = DEFAULT_RECEIVE_LIMIT,
        *,
        revoked: RevokedSerials = nothing_revoked,
        auditor: CallAuditor | None = None,
    ) -> None:
        # method -> (the server's handler, its guarded twin). Wrapping costs
        # more than a small RPC; the server hands out the same handler object
        # for a method on every call, so each is wrapped once. Only methods the
        # server has a handler for get an entry, which bounds the table.
        self._guarded: dict[str, tuple[Any, grpc.RpcMethodHandler[Any, Any]]] = {}
        self._limits = dict(receive_limits or {})
        self._default_limit = default_receive_limit
        self._revoked = revoked
        self._auditor = auditor

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
        limit = self._limits.get(method, self._default_limit)
        guarded = wrap_handler(handler, method, limit, self._revoked, self._auditor)
        self._guarded[method] = (handler, guarded)
        return guarded


def wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    method: str,
    receive_limit: int = DEFAULT_RECEIVE_LIMIT,
    revoked: RevokedSerials = nothing_revoked,
    auditor: CallAuditor | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler with its behaviour guarded by `authorize`; a
    single-request one becomes request-streaming and reads its request after."""
    behaviour: Behaviour | None = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    if behaviour is None:
        return handler
    streaming_out = handler.response_streaming
    # The guard reads raw bytes and parses them itself, each message held to
    # the method's limit (a stream's too: grpc's own limit is the largest).
    if handler.request_streaming:
        admit = _admit_stream(method, handler.request_deserializer, receive_limit, revoked)
    else:
        admit = _admit_one(method, handler.request_deserializer, receive_limit, revoked)
    deserializer = None
    factory = (
        grpc.stream_stream_rpc_method_handler
        if streaming_out
        else grpc.stream_unary_rpc_method_handler
    )
    if auditor is not None:
        admit, behaviour = _audited(method, auditor, admit, behaviour)
    return factory(
        _guard(behaviour, admit, streaming_out, method),
        request_deserializer=deserializer,
        response_serializer=handler.response_serializer,
    )


def _admit_stream(
    method: str, deserializer: Deserializer | None, limit: int, revoked: RevokedSerials
) -> Admit:
    async def admit(requests: Any, context: Context) -> tuple[Caller, Any]:
        del requests  # read through the context, message by message
        caller = await authorize(context, method, revoked)
        return caller, read_requests(context, method, deserializer, limit)

    return admit


async def read_requests(
    context: Context, method: str, deserializer: Deserializer | None, limit: int
) -> AsyncIterator[Any]:
    """A stream's request messages, each parsed and held to `limit` bytes."""
    while True:
        data = await context.read()
        if data is grpc.aio.EOF:  # type: ignore[attr-defined]  # not in grpc-stubs
            return
        yield await _parse(context, method, deserializer, limit, data)


def _admit_one(
    method: str, deserializer: Deserializer | None, limit: int, revoked: RevokedSerials
) -> Admit:
    async def admit(requests: Any, context: Context) -> tuple[Caller, Any]:
        del requests  # read through the context: one message, no iterator
        caller = await authorize(context, method, revoked)
        return caller, await read_request(context, method, deserializer, limit)

    return admit


async def read_request(
    context: Context, method: str, deserializer: Deserializer | None, limit: int
) -> Any:
    """The call's one request message, parsed; aborts the call when it is
    missing, over `limit` bytes or not the method's message."""
    name = method.rsplit("/", 1)[-1]
    data = await context.read()
    if data is grpc.aio.EOF:  # type: ignore[attr-defined]  # not in grpc-stubs
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: no request message")
    return await _parse(context, method, deserializer, limit, data)


async def _parse(
    context: Context, method: str, deserializer: Deserializer | None, limit: int, data: Any
) -> Any:
    name = method.rsplit("/", 1)[-1]
    assert isinstance(data, bytes)
    if len(data) > limit:
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"{name}: request of {len(data):,} bytes, {limit:,} max",
        )
    if deserializer is None:
        return data
    try:
        return deserializer(data)
    except Exception as exc:  # protobuf's DecodeError, or whatever a parser raises
        log.warning("%s: malformed request of %d bytes from %s", name, len(data), context.peer())
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{name}: the request is not a valid {name} request ({type(exc).__name__})",
        )


def _guard(behaviour: Behaviour, admit: Admit, response_streaming: bool, method: str) -> Behaviour:
    if inspect.isasyncgenfunction(behaviour):
        return _guard_async_gen(behaviour, admit)
    if inspect.iscoroutinefunction(behaviour):
        return _guard_coroutine(behaviour, admit)
    if response_streaming:
        return _guard_sync_stream(behaviour, admit, method)
    return _guard_sync(behaviour, admit, method)


async def _abort_unimplemented(context: Context, method: str) -> NoReturn:
    # The generated servicer base sets UNIMPLEMENTED and then raises
    # NotImplementedError, which grpc answers right but logs as an unexpected
    # error with a traceback: any caller could fill the log with them.
    name = method.rsplit("/", 1)[-1]
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented by this node")


def _guard_coroutine(behaviour: Behaviour, admit: Admit) -> Behaviour:
    async def guarded(request: Any, context: Context) -> Any:
        caller, request = await admit(request, context)
        token = current_caller.set(caller)
        try:
            return await behaviour(request, context)
        finally:
            current_caller.reset(token)

    return guarded


def _guard_async_gen(behaviour: Behaviour, admit: Admit) -> Behaviour:
    async def guarded(request: Any, context: Context) -> AsyncIterator[Any]:
        # grpc.aio drives the generator from the RPC's own task, so the value
        # set here is what the behaviour sees across every resumption.
        caller, request = await admit(request, context)
        current_caller.set(caller)
        async for response in behaviour(request, context):
            yield response

    return guarded


def _guard_sync(behaviour: Behaviour, admit: Admit, method: str) -> Behaviour:
    # A plain function (such as a generated servicer base method) would block
    # the event loop; run it in a thread, as grpc.aio itself would, and
    # asyncio.to_thread carries current_caller over.
    async def guarded(request: Any, context: Context) -> Any:
        caller, request = await admit(request, context)
        current_caller.set(caller)
        try:
            return await asyncio.to_thread(behaviour, request, context)
        except NotImplementedError:
            await _abort_unimplemented(context, method)

    return guarded


def _guard_sync_stream(behaviour: Behaviour, admit: Admit, method: str) -> Behaviour:
    async def guarded(request: Any, context: Context) -> AsyncIterator[Any]:
        caller, request = await admit(request, context)
        current_caller.set(caller)
        try:
            responses: Iterator[Any] = iter(await asyncio.to_thread(behaviour, request, context))
        except NotImplementedError:
            await _abort_unimplemented(context, method)
        done = object()
        while (item := await asyncio.to_thread(next, responses, done)) is not done:
            yield item

    return guarded


def _audited(
    method: str, auditor: CallAuditor, admit: Admit, behaviour: Behaviour
) -> tuple[Admit, Behaviour]:
    """`admit` and `behaviour` telling `auditor` how each call ended: refused
    by `admit` (no request read yet, or one it refused), or after the behaviour,
    which keeps its kind (see `_guard`). The caller comes from `current_caller`."""

    async def audited_admit(requests: Any, context: Context) -> tuple[Caller, Any]:
        try:
            return await admit(requests, context)
        except BaseException as exc:
            auditor.called(method, context, caller=None, request=None, response=None, error=exc)
            raise

    def told(request: Any, context: Context, response: Any, error: BaseException | None) -> None:
        auditor.called(
            method, context, caller=get_caller(), request=request, response=response, error=error
        )

    if inspect.isasyncgenfunction(behaviour):
        return audited_admit, _audited_stream(behaviour, told)
    if inspect.iscoroutinefunction(behaviour):
        return audited_admit, _audited_coroutine(behaviour, told)
    return audited_admit, _audited_plain(behaviour, told)


Told = Callable[[Any, Context, Any, "BaseException | None"], None]


class PeerKept:
    """A call's context whose peer was read when the call began. A client's
    cancel may free the call under its context, and reading the peer from
    gRPC's core after that (for the audit line) crashed the daemon with a
    segfault; everything else is the context's own."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._peer = context.peer()

    def peer(self) -> str:
        return self._peer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _audited_stream(behaviour: Behaviour, told: Told) -> Behaviour:
    async def audited(request: Any, context: Context) -> AsyncIterator[Any]:
        kept = cast("Context", PeerKept(context))
        try:
            async for response in behaviour(request, context):
                yield response
        except BaseException as exc:  # GeneratorExit too: the client went away
            told(request, kept, None, exc)
            raise
        told(request, kept, None, None)

    return audited


def _audited_coroutine(behaviour: Behaviour, told: Told) -> Behaviour:
    async def audited(request: Any, context: Context) -> Any:
        kept = cast("Context", PeerKept(context))
        try:
            response = await behaviour(request, context)
        except BaseException as exc:
            told(request, kept, None, exc)
            raise
        told(request, kept, response, None)
        return response

    return audited


def _audited_plain(behaviour: Behaviour, told: Told) -> Behaviour:
    # A plain function runs in a thread (see _guard_sync): so does its record.
    def audited(request: Any, context: Context) -> Any:
        kept = cast("Context", PeerKept(context))
        try:
            result = behaviour(request, context)
            if inspect.isgenerator(result):
                result = list(result)  # the generated bases never stream: they fail at once
        except BaseException as exc:
            told(request, kept, None, exc)
            raise
        told(request, kept, result, None)
        return result

    return audited
