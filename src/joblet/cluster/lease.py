"""A node's lease in the cluster's registry: who it is, where to reach it,
what it can take, and until when it counts as alive. Pure: encoding, keys
and the arithmetic of expiry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

NODE_KEY = "node:"


@dataclass(frozen=True)
class Capacity:
    cpus: int = 0
    memory_bytes: int = 0
    gpus: int = 0
    free_slots: int = -1  # jobs it may still start; -1 = no limit


@dataclass(frozen=True)
class NodeLease:
    node_id: str
    address: str
    version: str
    renewed_at: float  # unix seconds
    ttl_s: float
    labels: Mapping[str, str] = field(default_factory=dict)
    capacity: Capacity = field(default_factory=Capacity)

    def left_s(self, now: float) -> float:
        """Seconds until the lease lapses (0 once it has)."""
        return max(self.renewed_at + self.ttl_s - now, 0.0)


def registry_prefix(cluster: str) -> str:
    """Where a cluster's shared keys live in the store, whatever each node's
    own state.redis.keyPrefix: the cluster's name keeps unrelated daemons
    sharing one Redis apart."""
    return f"joblet-cluster:{cluster}:"


MEMBERS_KEY = "members"  # hash: node id -> the node's state.redis.keyPrefix


def conflicting_member(members: Mapping[str, str], node_id: str, key_prefix: str) -> str:
    """The node id of another member whose jobs live under `key_prefix`
    ('' when none): two nodes under one prefix would load each other's jobs."""
    return next((n for n, p in sorted(members.items()) if p == key_prefix and n != node_id), "")


def lease_key(prefix: str, node_id: str) -> str:
    return f"{prefix}{NODE_KEY}{node_id}"


def encode(lease: NodeLease) -> bytes:
    c = lease.capacity
    return json.dumps(
        {
            "nodeId": lease.node_id,
            "address": lease.address,
            "version": lease.version,
            "renewedAt": lease.renewed_at,
            "ttl": lease.ttl_s,
            "labels": dict(lease.labels),
            "capacity": {
                "cpus": c.cpus,
                "memoryBytes": c.memory_bytes,
                "gpus": c.gpus,
                "freeSlots": c.free_slots,
            },
        },
        sort_keys=True,
    ).encode()


def decode(blob: bytes) -> NodeLease | None:
    """The lease in `blob`; None for one that is not (a newer or damaged
    record must not break the listing of the others)."""
    try:
        raw = json.loads(blob)
        c = raw.get("capacity") or {}
        return NodeLease(
            node_id=str(raw["nodeId"]),
            address=str(raw["address"]),
            version=str(raw.get("version", "")),
            renewed_at=float(raw["renewedAt"]),
            ttl_s=float(raw["ttl"]),
            labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
            capacity=Capacity(
                cpus=int(c.get("cpus", 0)),
                memory_bytes=int(c.get("memoryBytes", 0)),
                gpus=int(c.get("gpus", 0)),
                free_slots=int(c.get("freeSlots", -1)),
            ),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def alive(leases: list[NodeLease], now: float) -> list[NodeLease]:
    """The leases not yet lapsed, by node id. The store expires keys itself;
    this also drops one it has not removed yet."""
    return sorted((x for x in leases if x.left_s(now) > 0), key=lambda x: x.node_id)
