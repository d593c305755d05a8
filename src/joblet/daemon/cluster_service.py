"""ClusterService: the nodes of this node's cluster, read from their leases
in the shared store (joblet.cluster)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.cluster.lease import NodeLease
from joblet.cluster.registry import RedisLeases
from joblet.daemon.errors import unary
from joblet.errors import FailedPrecondition, Unavailable
from joblet.state.backends.base import StateBackendError

Context = Any  # grpc.aio.ServicerContext


def node_message(lease: NodeLease, now: float) -> pb.ClusterNode:
    c = lease.capacity
    renewed = datetime.fromtimestamp(lease.renewed_at, UTC).isoformat().replace("+00:00", "Z")
    return pb.ClusterNode(
        nodeId=lease.node_id, address=lease.address, version=lease.version,
        labels=dict(lease.labels), cpus=c.cpus, memoryBytes=c.memory_bytes, gpus=c.gpus,
        freeSlots=c.free_slots, renewedAt=renewed, leaseTtlSeconds=lease.ttl_s,
        leaseLeftSeconds=lease.left_s(now),
    )  # fmt: skip


class ClusterService(pb_grpc.ClusterServiceServicer):
    """`leases` None: this node is in no cluster."""

    def __init__(self, cluster: str, node_id: str, leases: RedisLeases | None) -> None:
        self._cluster = cluster
        self._node_id = node_id
        self._leases = leases

    @unary
    async def ListClusterNodes(self, request: pb.EmptyRequest, context: Context) -> pb.ClusterNodes:
        if self._leases is None:
            raise FailedPrecondition("this node is in no cluster (cluster.name is not set)")
        now = time.time()
        try:
            leases = await self._leases.live(now)
        except StateBackendError as exc:
            raise Unavailable(f"the cluster's store is away: {exc}") from exc
        return pb.ClusterNodes(
            clusterName=self._cluster,
            answeredBy=self._node_id,
            nodes=[node_message(lease, now) for lease in leases],
        )
