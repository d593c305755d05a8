"""What a node says about itself when asked (rnx nodes, the web UI's nodes
page): no CLI or web code, so either may use it."""

from __future__ import annotations

from dataclasses import dataclass

# Jobs that hold or wait for a node's resources: what "busy" means.
ACTIVE_STATUSES = ("PENDING", "INITIALIZING", "QUEUED", "SCHEDULED", "RUNNING")


@dataclass(frozen=True)
class Probe:
    """What one node said about itself."""

    latency_ms: float
    version: str
    node_id: str
    active_jobs: int
    free_gpus: int | None = None  # None: the node does not report GPUs
