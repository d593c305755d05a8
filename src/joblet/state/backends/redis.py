"""Redis: one store shared by several daemons, each under its own key prefix.

Each job is one string key, `<prefix>job:<id>`, so a TTL is Redis's own EX and
listing is a SCAN over the prefix. redis-py is an optional extra
(`joblet[redis]`) imported only here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from joblet.state.backends.base import StateBackendError
from joblet.state.config import RedisConfig

if TYPE_CHECKING:
    from redis.asyncio import Redis

_MGET_CHUNK = 500
_GLOB_SPECIALS = "\\*?[]"


def escape_glob(text: str) -> str:
    """`text` as a literal inside a Redis MATCH pattern."""
    return "".join("\\" + ch if ch in _GLOB_SPECIALS else ch for ch in text)


class RedisBackend:
    def __init__(self, client: Redis, key_prefix: str) -> None:
        self._client = client
        self._prefix = key_prefix + "job:"

    @classmethod
    async def open(cls, config: RedisConfig) -> RedisBackend:
        try:
            from redis.asyncio import Redis
        except ImportError as exc:
            raise StateBackendError(
                "the redis state backend needs redis-py: pip install 'joblet[redis]'"
            ) from exc
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff

        # A short client-side retry for a dropped connection; the helper's own
        # write policy (timeout, retries, backoff) handles longer outages.
        retry = Retry(ExponentialBackoff(cap=0.2, base=0.02), 2)
        client = Redis(retry=retry, **client_options(config))
        backend = cls(client, config.key_prefix)
        try:
            await backend._call(client.ping())
        except StateBackendError:
            await client.aclose()
            raise
        return backend

    async def _call(self, awaitable: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise StateBackendError(f"redis: {exc}") from exc

    async def put(self, job_id: str, record: bytes, ttl_s: float | None = None) -> None:
        px = max(1, math.ceil(ttl_s * 1000)) if ttl_s is not None and ttl_s > 0 else None
        await self._call(self._client.set(self._prefix + job_id, record, px=px))

    async def delete(self, job_id: str) -> None:
        await self._call(self._client.delete(self._prefix + job_id))

    async def get(self, job_id: str) -> bytes | None:
        value = await self._call(self._client.get(self._prefix + job_id))
        return None if value is None else bytes(value)

    async def list_all(self) -> list[tuple[str, bytes]]:
        keys = await self._call(self._scan_keys())
        out: list[tuple[str, bytes]] = []
        for start in range(0, len(keys), _MGET_CHUNK):
            chunk = keys[start : start + _MGET_CHUNK]
            values = await self._call(self._client.mget(chunk))
            # A key deleted or expired between SCAN and MGET comes back as None.
            out.extend(
                (key[len(self._prefix) :].decode(), bytes(value))
                for key, value in zip(chunk, values, strict=True)
                if value is not None
            )
        return out

    async def _scan_keys(self) -> list[bytes]:
        pattern = escape_glob(self._prefix) + "*"
        # SCAN may return a key twice while the keyspace is rehashed.
        return list(dict.fromkeys([k async for k in self._client.scan_iter(pattern, 1000)]))

    async def close(self) -> None:
        await self._client.aclose()


def client_options(config: RedisConfig) -> dict[str, Any]:
    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "db": config.db,
        "password": config.password or None,
        "socket_connect_timeout": 5.0,
    }
    if config.tls.enabled:
        options.update(
            ssl=True,
            ssl_ca_certs=config.tls.ca_file or None,
            ssl_certfile=config.tls.cert_file or None,
            ssl_keyfile=config.tls.key_file or None,
            ssl_cert_reqs="required" if config.tls.verify else "none",
            ssl_check_hostname=config.tls.verify,
        )
    return options


async def call_dropping_dead(client: Any, awaitable: Any) -> Any:
    """`awaitable`, a call on `client` (redis.asyncio), its errors as
    StateBackendError. A connection Redis closed (it restarted, or a
    partition ended it) means the pool's idle ones are dead too: they are
    dropped at once, sparing the next calls the same error."""
    from redis.exceptions import ConnectionError as ClosedError
    from redis.exceptions import RedisError

    try:
        return await awaitable
    except (RedisError, OSError) as exc:
        if isinstance(exc, ClosedError):
            await client.connection_pool.disconnect(inuse_connections=False)
        raise StateBackendError(f"redis: {exc}") from exc


def failed_on_closed(exc: StateBackendError) -> bool:
    """Whether a call failed on a connection Redis had closed (nothing of it
    was run when the connection sat idle in the pool)."""
    from redis.exceptions import ConnectionError as ClosedError

    return isinstance(exc.__cause__, ClosedError)
