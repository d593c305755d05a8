"""This daemon as a member of a cluster (cluster.name): its lease in the
shared store, renewed every cluster.renewEvery while it serves and removed
when it stops cleanly (a crashed node's lease lapses after cluster.leaseTtl)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from joblet.cluster.config import ClusterConfig
from joblet.cluster.lease import Capacity, NodeLease, registry_prefix
from joblet.cluster.registry import Heartbeat, RedisLeases
from joblet.config.host_memory import read_mem_total
from joblet.config.model import DaemonConfig
from joblet.errors import ConfigError
from joblet.state.backends.base import StateBackendError
from joblet.state.config import StateConfig

log = logging.getLogger(__name__)
_WILDCARDS = ("0.0.0.0", "::", "[::]", "")


@dataclass(frozen=True)
class Member:
    """What a node knows of itself for its lease."""

    node_id: str
    address: str
    version: str
    cluster: ClusterConfig
    cpus: int
    memory_bytes: int
    free_slots: Callable[[], int]  # -1 = no limit

    def lease(self) -> NodeLease:
        capacity = Capacity(self.cpus, self.memory_bytes, 0, self.free_slots())
        return NodeLease(
            self.node_id, self.address, self.version, time.time(),
            self.cluster.lease_ttl_s, self.cluster.labels, capacity,
        )  # fmt: skip


def advertised(cluster: ClusterConfig, config: DaemonConfig) -> str:
    """cluster.advertise, else the listen address (the host's name for a
    wildcard one) and port."""
    if cluster.advertise:
        return cluster.advertise
    host = config.server.address
    host = socket.gethostname() if host in _WILDCARDS else host
    return f"{host}:{config.server.port}"


def check_store(cluster: ClusterConfig, state: StateConfig) -> None:
    if state.backend != "redis":
        raise ConfigError(
            f"cluster.name {cluster.name!r} needs a store every node reaches:"
            f" state.backend: redis (not {state.backend})"
        )


async def _join_now(
    leases: RedisLeases, node_id: str, key_prefix: str
) -> Callable[[], Awaitable[None]] | None:
    """Join the members table now (a prefix taken by another node refuses
    the start); with the store away, the join for the heartbeat to retry."""

    async def join() -> None:
        await leases.join(node_id, key_prefix)

    try:
        await join()
    except StateBackendError as exc:
        log.warning("cluster: the store is away, joining when it is back: %s", exc)
        return join
    except BaseException:
        await leases.close()
        raise
    return None


@contextlib.asynccontextmanager
async def membership(
    cluster: ClusterConfig,
    state: StateConfig,
    config: DaemonConfig,
    *,
    node_id: str,
    version: str,
    free_slots: Callable[[], int],
) -> AsyncIterator[RedisLeases | None]:
    """The cluster's leases with this node's renewed in the background;
    None (and nothing running) when the node is in no cluster."""
    if not cluster.enabled:
        yield None
        return
    check_store(cluster, state)
    leases = RedisLeases.open(state.redis, registry_prefix(cluster.name))
    member = Member(
        node_id, advertised(cluster, config), version, cluster,
        os.cpu_count() or 0, read_mem_total(), free_slots,
    )  # fmt: skip
    join = await _join_now(leases, node_id, state.redis.key_prefix)
    heartbeat = Heartbeat(leases, member.lease, cluster.renew_every_s, join)
    task = asyncio.create_task(heartbeat.run(), name="cluster-lease")
    try:
        yield leases
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(StateBackendError):  # the store away: the lease lapses
            await leases.leave(node_id)
        await leases.close()
