"""Where job records live: one small interface, four implementations.

`open_backend` picks one from a `StateConfig`; the Redis and DynamoDB modules
import their client libraries only when chosen, so the daemon never needs them.
"""

from __future__ import annotations

from joblet.state.backends.base import StateBackend, StateBackendError
from joblet.state.backends.memory import MemoryBackend
from joblet.state.config import StateConfig

__all__ = ["MemoryBackend", "StateBackend", "StateBackendError", "open_backend"]


async def open_backend(config: StateConfig) -> StateBackend:
    """The backend `config.backend` names, opened and ready; StateBackendError if not."""
    if config.backend == "memory":
        return MemoryBackend()
    if config.backend == "sqlite":
        from joblet.state.backends.sqlite import SqliteBackend

        return await SqliteBackend.open(config.sqlite.path)
    if config.backend == "redis":
        from joblet.state.backends.redis import RedisBackend

        return await RedisBackend.open(config.redis)
    if config.backend == "dynamodb":
        from joblet.state.backends.dynamodb import DynamoBackend

        return await DynamoBackend.open(config.dynamodb)
    raise StateBackendError(f"unknown state backend {config.backend!r}")
