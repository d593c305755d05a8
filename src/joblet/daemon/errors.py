"""Domain errors to gRPC status, in one place for every servicer method."""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from joblet.errors import JobletError

log = logging.getLogger(__name__)

T = TypeVar("T")


# Status details travel in a trailer, and clients refuse headers over 8-16 KiB
# in all: an error that quotes a huge request field would reach the caller as
# a broken stream instead of the error.
MAX_DETAILS = 2048


def status_details(text: str) -> str:
    """`text` cut to at most MAX_DETAILS characters, saying how much was cut."""
    if len(text) <= MAX_DETAILS:
        return text
    cut = len(text) - MAX_DETAILS
    return f"{text[:MAX_DETAILS]}... ({cut:,} more characters)"


# Trailing metadata of an UNAVAILABLE the daemon answers itself (a helper or
# store it depends on is away), so that a client tells it from a daemon it
# cannot reach, which grpc reports with the same code.
ANSWERED_KEY = "joblet-answered"


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], exc: JobletError) -> None:
    """End the call with the error's status and message."""
    answered = ((ANSWERED_KEY, "unavailable"),) if exc.code == grpc.StatusCode.UNAVAILABLE else ()
    await context.abort(exc.code, status_details(str(exc)), answered)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> None:
    if isinstance(exc, JobletError):
        await abort_with(context, exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # A full disk is a resource the caller can wait for, not a bug.
        where = f" ({exc.filename})" if exc.filename else ""
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc.strerror}{where}")
    log.exception("unexpected error in RPC", exc_info=exc)
    message = f"internal error: {type(exc).__name__}: {exc}"
    await context.abort(grpc.StatusCode.INTERNAL, status_details(message))


def unary(
    method: Callable[[Any, Any, Any], Awaitable[T]],
) -> Callable[[Any, Any, Any], Awaitable[T]]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: Any) -> T:
        try:
            return await method(self, request, context)
        except (JobletError, OSError, ValueError) as exc:
            await _abort(context, exc)
            raise AssertionError("abort returned") from exc  # pragma: no cover

    return wrapper


def streaming(
    method: Callable[[Any, Any, Any], AsyncIterator[T]],
) -> Callable[[Any, Any, Any], AsyncIterator[T]]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: Any) -> AsyncIterator[T]:
        try:
            async for item in method(self, request, context):
                yield item
        except (JobletError, OSError, ValueError) as exc:
            await _abort(context, exc)

    return wrapper
