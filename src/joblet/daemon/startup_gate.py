"""The daemon listens before the previous run's jobs are back; calls wait.

A restart with thousands of retained and running jobs takes seconds to load
and re-attach them. Listening only after that leaves clients with refused
connections; listening before, with the jobs half restored, would answer
NOT_FOUND (or an empty list) for jobs that still run. So the port opens
early and every call waits at this gate until the jobs are restored, then
goes on as it would have; a call's own deadline bounds its wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc


class StartupGate(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self._open = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def open(self) -> None:
        """The jobs are restored: waiting calls and every later one go on."""
        self._open.set()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if not self._open.is_set():
            await self._open.wait()
        return await continuation(handler_call_details)
