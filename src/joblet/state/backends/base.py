"""The interface every state backend implements, and its one error type."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from joblet.errors import JobletError


class StateBackendError(JobletError):
    """The store refused or failed an operation (unreachable, corrupt, full...)."""


class StateBackend(Protocol):
    """A key-value store of opaque job records, keyed by job id.

    Every method may raise StateBackendError and nothing else on purpose. A put
    with `ttl_s` lets the store forget the record after that many seconds;
    expired records are never returned, whether or not the store has removed
    them yet. Operations are applied in the order they are awaited.
    """

    async def put(self, job_id: str, record: bytes, ttl_s: float | None = None) -> None: ...

    async def delete(self, job_id: str) -> None: ...

    async def get(self, job_id: str) -> bytes | None: ...

    async def list_all(self) -> list[tuple[str, bytes]]: ...

    async def close(self) -> None: ...


# One write of a batch: (job id, record or None to delete, ttl in seconds or None).
Write = tuple[str, bytes | None, float | None]


@runtime_checkable
class BatchWriter(Protocol):
    """A backend that can apply several writes, in order, as one unit (all or
    none, such as one transaction); the helper uses it for a WriteBatch and
    falls back to one write at a time for backends without it."""

    async def write_many(self, writes: Sequence[Write]) -> None: ...


def expiry(ttl_s: float | None, now: float | None = None) -> float | None:
    """The unix time a record put now with `ttl_s` expires at; None = never."""
    if ttl_s is None or ttl_s <= 0:
        return None
    return (time.time() if now is None else now) + ttl_s


def is_expired(expires_at: float | None, now: float | None = None) -> bool:
    return expires_at is not None and expires_at <= (time.time() if now is None else now)
