"""Group commit for concurrent callers: what arrives while one batch is on
its way goes out together as the next, and each caller is answered with its
own item's outcome once that batch has returned.

A lone call goes out at once (no linger); under load batches grow with the
round trip, so a store that syncs once per batch (Redis with `appendfsync
always` fsyncs once per event-loop turn) pays one round trip and one sync
for many callers instead of one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Sends a batch; returns one outcome per item, in order: a result, or the
# exception that item's caller gets. An exception it raises fails the batch.
Flush = Callable[[Sequence[T]], Awaitable[Sequence["R | BaseException"]]]

MAX_BATCH = 256  # items per batch: a batch's reply stays small


class GroupCommit(Generic[T, R]):
    def __init__(self, flush: Flush[T, R], max_batch: int = MAX_BATCH) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def call(self, item: T) -> R:
        """`item` sent with the others waiting; its own outcome."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send_all())
        # A caller that goes away (its RPC cancelled) does not cancel the
        # batch: the others in it still get their answers.
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            done.add_done_callback(_consume)
            raise

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._send(batch)
        finally:
            self._sending = None

    async def _send(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._flush([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for a batch of {len(batch)}")
        except Exception as exc:  # the whole batch failed: every caller gets it
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        except BaseException:  # this task cancelled (a stop): no answer will come
            for _, done in batch:
                done.cancel()
            raise
        for (_, done), outcome in zip(batch, outcomes, strict=True):
            if done.done():
                continue
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)


def _consume(done: asyncio.Future[Any]) -> None:
    """Read a gone caller's outcome, so asyncio does not log it as never retrieved."""
    if not done.cancelled():
        done.exception()
