"""A node's lease and the `cluster:` section: pure encoding, expiry and the
values refused before a daemon starts."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import cast

import pytest

from joblet.cluster.config import ClusterConfig, parse_cluster_config
from joblet.cluster.lease import (
    Capacity,
    NodeLease,
    alive,
    decode,
    encode,
    lease_key,
    registry_prefix,
)
from joblet.cluster.registry import Heartbeat, RedisLeases
from joblet.daemon.cluster_member import check_store
from joblet.errors import ConfigError
from joblet.state.config import StateConfig

LEASE = NodeLease(
    "n1", "10.0.0.5:50051", "1.2.3", renewed_at=100.0, ttl_s=10.0,
    labels={"zone": "a"}, capacity=Capacity(cpus=4, memory_bytes=8 << 30, gpus=1, free_slots=3),
)  # fmt: skip


def test_a_lease_round_trips_and_a_damaged_one_is_skipped() -> None:
    assert decode(encode(LEASE)) == LEASE
    assert decode(b"not json") is None
    assert decode(b'{"nodeId": "x"}') is None


def test_a_lease_lapses_ttl_seconds_after_its_renewal() -> None:
    assert LEASE.left_s(104.0) == 6.0
    assert LEASE.left_s(111.0) == 0.0
    later = NodeLease("n0", "a:1", "v", renewed_at=105.0, ttl_s=10.0)
    assert alive([LEASE, later], 109.0) == [later, LEASE]  # by node id
    assert alive([LEASE, later], 112.0) == [later]


def test_keys_are_the_clusters_whatever_the_nodes_own_prefix() -> None:
    assert lease_key(registry_prefix("prod"), "n1") == "joblet-cluster:prod:node:n1"


def test_the_cluster_section_has_defaults_and_reads_durations() -> None:
    assert parse_cluster_config({}) == ClusterConfig()
    assert not ClusterConfig().enabled
    parsed = parse_cluster_config(
        {"name": "prod", "leaseTtl": "3s", "renewEvery": "500ms", "labels": {"gpu": True}}
    )
    assert (parsed.lease_ttl_s, parsed.renew_every_s, parsed.labels) == (3.0, 0.5, {"gpu": "True"})
    keyed = parse_cluster_config({"nodeCert": "C", "nodeKey": "K", "forwardTimeout": "2s"})
    assert (keyed.node_cert, keyed.node_key, keyed.forward_timeout_s) == ("C", "K", 2.0)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"name": "no spaces"}, "cluster.name 'no spaces'"),
        ({"leaseTtl": "4s", "renewEvery": "3s"}, "must be at most half of cluster.leaseTtl"),
        ({"leaseTtl": 0}, "must be > 0"),
        ({"labels": ["a"]}, "cluster.labels must be a mapping"),
        ({"labels": {"a b": "c"}}, "is not a label name"),
        ({"nodeCert": "PEM"}, "cluster.nodeCert and cluster.nodeKey go together"),
        ({"forwardTimeout": 0}, "cluster.forwardTimeout must be > 0"),
    ],
)
def test_bad_cluster_values_are_refused(section: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_cluster_config(section)


def test_a_cluster_needs_a_shared_store() -> None:
    cluster = parse_cluster_config({"name": "prod"})
    sqlite = StateConfig.for_root(Path("/tmp/x"))
    with pytest.raises(ConfigError, match=re.escape("state.backend: redis")):
        check_store(cluster, sqlite)
    check_store(cluster, StateConfig.for_root(sqlite.socket.parent, backend="redis"))


class SlowStore:
    """A store whose first renewal is answered after `stall_s` (it stalled)."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self.renewed: list[float] = []

    async def renew(self, lease: NodeLease) -> None:
        if not self.renewed:
            await asyncio.sleep(self.stall_s)
        self.renewed.append(lease.renewed_at)


def test_a_renewal_answered_late_is_made_again_so_the_lease_counts_from_now() -> None:
    """A lease written late carries the time it was sent; it may lapse soon
    after (and fence this node's jobs): renewed again at once."""
    store = SlowStore(0.15)

    def lease() -> NodeLease:
        return NodeLease("n1", "a:1", "v", renewed_at=time.time(), ttl_s=1.0)

    heartbeat = Heartbeat(cast("RedisLeases", store), lease, every_s=0.1)
    asyncio.run(heartbeat.beat())
    assert len(store.renewed) == 2 and store.renewed[1] - store.renewed[0] >= 0.15
    asyncio.run(heartbeat.beat())  # answered in time: once
    assert len(store.renewed) == 3
