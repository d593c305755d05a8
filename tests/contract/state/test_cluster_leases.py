"""The cluster's node registry in a real redis-server: a lease is listed
while renewed, gone after its TTL without anyone removing it, gone at once
when its node leaves, and kept apart from another cluster's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from local_servers import free_port

from joblet.cluster.lease import NodeLease, lease_key, registry_prefix
from joblet.cluster.registry import Heartbeat, RedisLeases
from joblet.errors import ConfigError
from joblet.state.backends.base import StateBackendError
from joblet.state.config import RedisConfig


def _lease(node_id: str, ttl_s: float = 10.0) -> NodeLease:
    return NodeLease(node_id, f"{node_id}:50051", "1.0", time.time(), ttl_s)


@pytest.fixture
async def leases(redis_port: int) -> AsyncIterator[RedisLeases]:
    store = RedisLeases.open(RedisConfig(port=redis_port), registry_prefix(f"t{time.time_ns()}"))
    yield store
    await store.close()


async def test_a_renewed_lease_is_listed_until_its_node_leaves(leases: RedisLeases) -> None:
    await leases.renew(_lease("b"))
    await leases.renew(_lease("a"))
    assert [x.node_id for x in await leases.live()] == ["a", "b"]
    await leases.leave("a")
    assert [x.node_id for x in await leases.live()] == ["b"]


async def test_a_lease_not_renewed_lapses_by_itself(leases: RedisLeases) -> None:
    await leases.renew(_lease("gone", ttl_s=0.3))
    await leases.renew(_lease("kept"))
    deadline = time.monotonic() + 5
    while len(await leases.live()) > 1:
        assert time.monotonic() < deadline, "the lapsed lease is still listed"
        await asyncio.sleep(0.05)
    assert [x.node_id for x in await leases.live()] == ["kept"]


async def test_clusters_sharing_a_redis_stay_apart(leases: RedisLeases, redis_port: int) -> None:
    other = RedisLeases.open(RedisConfig(port=redis_port), registry_prefix(f"o{time.time_ns()}"))
    try:
        await other.renew(_lease("elsewhere"))
        await leases.renew(_lease("here"))
        assert [x.node_id for x in await leases.live()] == ["here"]
    finally:
        await other.close()


async def test_a_damaged_record_does_not_hide_the_others(
    leases: RedisLeases, redis_port: int
) -> None:
    from redis.asyncio import Redis

    await leases.renew(_lease("good"))
    raw = Redis(port=redis_port)
    try:
        prefix = leases._prefix  # the test writes beside the store, as a newer node might
        await raw.set(lease_key(prefix, "bad"), b"{broken", px=10_000)
    finally:
        await raw.aclose()
    assert [x.node_id for x in await leases.live()] == ["good"]


async def test_a_store_away_is_a_backend_error_and_the_heartbeat_goes_on() -> None:
    away = RedisLeases.open(RedisConfig(port=free_port()), registry_prefix("away"))
    try:
        with pytest.raises(StateBackendError, match="redis"):
            await away.live()
        heartbeat = Heartbeat(away, lambda: _lease("n"), 0.1)
        await heartbeat.beat()
        assert heartbeat.failing
    finally:
        await away.close()


async def test_a_nodes_job_prefix_is_its_own(leases: RedisLeases) -> None:
    await leases.join("n1", "n1:")
    await leases.join("n2", "n2:")
    await leases.join("n1", "n1:")  # the same node again: a restart
    assert await leases.members() == {"n1": "n1:", "n2": "n2:"}
    with pytest.raises(ConfigError, match="holds the jobs of node n1"):
        await leases.join("n3", "n1:")
    assert await leases.members() == {"n1": "n1:", "n2": "n2:"}


async def test_records_under_a_prefix_are_read_whole(leases: RedisLeases, redis_port: int) -> None:
    from redis.asyncio import Redis

    raw = Redis(port=redis_port)
    prefix = f"r{time.time_ns()}:job:"
    try:
        await raw.mset({f"{prefix}{n:04d}": b"x" * n for n in range(1, 1201)})
        await raw.set(f"{prefix[:-4]}other", b"not a job")
        records = dict(await leases.records(prefix))
    finally:
        await raw.delete(*[f"{prefix}{n:04d}" for n in range(1, 1201)], f"{prefix[:-4]}other")
        await raw.aclose()
    assert len(records) == 1200 and records["0007"] == b"x" * 7
