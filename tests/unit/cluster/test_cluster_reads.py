"""With the cluster's Redis away, reads answer for this node alone rather
than fail: no other node's jobs, none found elsewhere."""

from __future__ import annotations

import socket

from joblet.cluster.jobs import ClusterJobs
from joblet.cluster.lease import registry_prefix
from joblet.cluster.registry import RedisLeases
from joblet.daemon.cluster_reads import find_elsewhere, other_jobs
from joblet.state.config import RedisConfig


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_store_away_leaves_the_other_nodes_out() -> None:
    leases = RedisLeases.open(RedisConfig(port=_closed_port()), registry_prefix("away"))
    try:
        cluster = ClusterJobs(leases, "me")
        assert await other_jobs(cluster) == []
        assert await find_elsewhere(cluster, "0e5c") is None
        assert await other_jobs(None) == [] and await find_elsewhere(None, "x") is None
    finally:
        await leases.close()
