"""The cluster's registry of nodes in Redis: one key per node holding its
lease, with the lease's TTL as the key's own expiry, so a node that stops
renewing drops out without anyone removing it."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from joblet.cluster.lease import (
    MEMBERS_KEY,
    NODE_KEY,
    NodeLease,
    alive,
    conflicting_member,
    decode,
    encode,
    lease_key,
)
from joblet.errors import ConfigError
from joblet.state.backends.base import StateBackendError
from joblet.state.backends.redis import (
    call_dropping_dead,
    client_options,
    escape_glob,
    failed_on_closed,
)
from joblet.state.config import RedisConfig

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
_MGET_CHUNK = 500
_REPLACE_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class RedisLeases:
    """Leases under `prefix` (see `lease.registry_prefix`)."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def open(cls, config: RedisConfig, prefix: str) -> RedisLeases:
        """A client; it connects on its first call (a store that is away at
        start-up is retried by the heartbeat, not fatal)."""
        try:
            from redis.asyncio import Redis
        except ImportError as exc:
            raise StateBackendError(
                "a cluster needs redis-py: pip install 'joblet[redis]'"
            ) from exc
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No retries in the client: the next beat is the retry, and a beat
        # must not outlast the lease it renews.
        options = {**client_options(config), "socket_connect_timeout": 2.0, "socket_timeout": 2.0}
        return cls(Redis(retry=Retry(NoBackoff(), 0), **options), prefix)

    async def _call(self, awaitable: Any) -> Any:
        return await call_dropping_dead(self._client, awaitable)

    async def renew(self, lease: NodeLease) -> None:
        px = max(1, math.ceil(lease.ttl_s * 1000))
        key = lease_key(self._prefix, lease.node_id)
        await self._call(self._client.set(key, encode(lease), px=px))

    async def leave(self, node_id: str) -> None:
        await self._call(self._client.delete(lease_key(self._prefix, node_id)))

    async def live(self, now: float | None = None) -> list[NodeLease]:
        """Every live lease, by node id."""
        pattern = escape_glob(self._prefix + NODE_KEY) + "*"
        keys = await self._call(self._keys(pattern))
        leases = []
        for start in range(0, len(keys), _MGET_CHUNK):
            values = await self._call(self._client.mget(keys[start : start + _MGET_CHUNK]))
            # A lease that lapsed between SCAN and MGET comes back as None.
            leases += [x for x in (decode(v) for v in values if v is not None) if x]
        return alive(leases, time.time() if now is None else now)

    async def lease(self, node_id: str, now: float | None = None) -> NodeLease | None:
        """One node's live lease; None when it holds none."""
        key = lease_key(self._prefix, node_id)
        try:
            value = await self._call(self._client.get(key))
        except StateBackendError as exc:
            if not failed_on_closed(exc):
                raise
            value = await self._call(self._client.get(key))  # a read: once more, fresh
        found = None if value is None else decode(bytes(value))
        if found is None:
            return None
        live = alive([found], time.time() if now is None else now)
        return live[0] if live else None

    async def join(self, node_id: str, key_prefix: str) -> None:
        """Record that this node's jobs live under `key_prefix`, refusing a
        prefix another member's jobs already use."""
        members = await self.members()
        other = conflicting_member(members, node_id, key_prefix)
        if other:
            raise ConfigError(
                f"state.redis.keyPrefix {key_prefix!r} holds the jobs of node {other} of this"
                " cluster already; give each node of a cluster a prefix of its own"
            )
        await self._call(self._client.hset(self._prefix + MEMBERS_KEY, node_id, key_prefix))

    async def members(self) -> dict[str, str]:
        """Every node that ever joined (node id -> its jobs' key prefix)."""
        raw = await self._call(self._client.hgetall(self._prefix + MEMBERS_KEY))
        return {bytes(k).decode(): bytes(v).decode() for k, v in raw.items()}

    async def records(self, key_prefix: str) -> list[tuple[str, bytes]]:
        """(key past `key_prefix`, value) of every key under `key_prefix`."""
        keys = await self._call(self._keys(escape_glob(key_prefix) + "*"))
        out: list[tuple[str, bytes]] = []
        for start in range(0, len(keys), _MGET_CHUNK):
            chunk = keys[start : start + _MGET_CHUNK]
            values = await self._call(self._client.mget(chunk))
            out += [
                (bytes(k)[len(key_prefix) :].decode(), bytes(v))
                for k, v in zip(chunk, values, strict=True)
                if v is not None
            ]
        return out

    async def record(self, key: str) -> bytes | None:
        value = await self._call(self._client.get(key))
        return None if value is None else bytes(value)

    async def replace_record(self, key: str, old: bytes, new: bytes) -> bool:
        """Set `key` to `new` only if it still holds `old` (one atomic step:
        a write of the owner's in between wins, and this one is refused)."""
        done = await self._call(self._client.eval(_REPLACE_IF_SAME, 1, key, old, new))
        return bool(done)

    async def _keys(self, pattern: str) -> list[bytes]:
        return list(dict.fromkeys([k async for k in self._client.scan_iter(pattern, 1000)]))

    async def close(self) -> None:
        await self._client.aclose()


class Heartbeat:
    """Renews this node's lease every `every_s` until cancelled; a store that
    is away is logged once per outage and tried again at the next beat.
    `join`, when given, runs before the first renewal that gets through (a
    store away at start-up)."""

    def __init__(
        self,
        leases: RedisLeases,
        lease: Callable[[], NodeLease],
        every_s: float,
        join: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._leases = leases
        self._lease = lease
        self._every_s = every_s
        self._join = join
        self.failing = False

    async def beat(self) -> None:
        try:
            if self._join is not None:
                await self._join()
                self._join = None
            lease = self._lease()
            await self._leases.renew(lease)
            if time.time() - lease.renewed_at > self._every_s:
                # The store answered late (it stalled): the lease it holds
                # counts from before the wait, and may lapse soon; again, now.
                await self._leases.renew(self._lease())
        except StateBackendError as exc:
            if not self.failing:
                log.warning("cluster: cannot renew this node's lease: %s", exc)
            self.failing = True
            return
        if self.failing:
            log.info("cluster: this node's lease is renewed again")
        self.failing = False

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except ConfigError as exc:  # found only once the store came back
                log.error("cluster: this node stays out of the cluster: %s", exc)
                return
            await asyncio.sleep(self._every_s)
