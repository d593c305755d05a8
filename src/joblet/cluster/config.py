"""The `cluster:` section of joblet-config.yml.

    cluster:
      name: prod                 # the key prefix shared by the cluster's nodes; "" = none
      advertise: 10.0.0.5:50051  # the address other nodes and clients dial (default:
                                 # server.address:server.port)
      labels: {zone: a, gpu: "yes"}
      leaseTtl: 10s              # a node whose lease is not renewed for this long is gone
      renewEvery: 3s             # how often a node renews its lease
      nodeCert: PEM              # this node's certificate (OU=node, `joblet certs issue
      nodeKey: PEM               #   --role node`): how it forwards calls to a job's owner
      forwardTimeout: 5s         # how long a forwarded call waits to reach the owner
      placement: false           # RunJob queues a job for whichever node has room
      maxUploadBytes: 8MiB       # a placed job's request at most this big (larger: local)

A cluster needs a store every node reaches: `state.backend: redis`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joblet.config.keys import Schema
from joblet.config.units import parse_duration_s, parse_size_bytes
from joblet.errors import ConfigError

KEYS: Schema = dict.fromkeys(
    ("name", "advertise", "labels", "leaseTtl", "renewEvery", "nodeCert", "nodeKey",
     "forwardTimeout", "placement", "maxUploadBytes")
)  # fmt: skip
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,62}")


@dataclass(frozen=True)
class ClusterConfig:
    name: str = ""  # "" = this node is in no cluster
    advertise: str = ""  # "" = server.address:server.port
    labels: Mapping[str, str] = field(default_factory=dict)
    lease_ttl_s: float = 10.0
    renew_every_s: float = 3.0
    node_cert: str = ""  # PEM; "" = this node forwards nothing (UNAVAILABLE says why)
    node_key: str = ""
    forward_timeout_s: float = 5.0
    placement: bool = False
    max_upload_bytes: int = 8 * 1024 * 1024

    @property
    def enabled(self) -> bool:
        return bool(self.name)


def parse_cluster_config(raw: Mapping[str, Any]) -> ClusterConfig:
    """`raw` is the `cluster:` section; ValueError naming the bad key."""
    defaults = ClusterConfig()
    name = str(raw.get("name", "") or "")
    if name and not _NAME.fullmatch(name):
        raise ValueError(
            f"cluster.name {name!r}: letters, digits, '_', '.', '-' (at most 63, a letter"
            " or digit first)"
        )
    ttl = parse_duration_s(raw.get("leaseTtl", defaults.lease_ttl_s))
    renew = parse_duration_s(raw.get("renewEvery", defaults.renew_every_s))
    if ttl <= 0 or renew <= 0:
        raise ValueError("cluster.leaseTtl and cluster.renewEvery must be > 0")
    if renew * 2 > ttl:  # one renewal may be late or lost without the lease lapsing
        raise ValueError(
            f"cluster.renewEvery ({renew:g}s) must be at most half of cluster.leaseTtl ({ttl:g}s)"
        )
    node_cert = str(raw.get("nodeCert", "") or "")
    node_key = str(raw.get("nodeKey", "") or "")
    if bool(node_cert) != bool(node_key):
        raise ValueError("cluster.nodeCert and cluster.nodeKey go together: give both, or neither")
    forward_timeout = parse_duration_s(raw.get("forwardTimeout", defaults.forward_timeout_s))
    if forward_timeout <= 0:
        raise ValueError("cluster.forwardTimeout must be > 0")
    placement = raw.get("placement", False)
    if not isinstance(placement, bool):
        raise ValueError("cluster.placement is true or false")
    if placement and not name:
        raise ValueError("cluster.placement needs cluster.name")
    max_upload = parse_size_bytes(raw.get("maxUploadBytes", defaults.max_upload_bytes))
    if max_upload <= 0:
        raise ValueError("cluster.maxUploadBytes must be > 0")
    return ClusterConfig(
        name=name,
        placement=placement,
        max_upload_bytes=max_upload,
        node_cert=node_cert,
        node_key=node_key,
        forward_timeout_s=forward_timeout,
        advertise=str(raw.get("advertise", "") or ""),
        labels=_labels(raw.get("labels") or {}),
        lease_ttl_s=ttl,
        renew_every_s=renew,
    )


def load_cluster_config(config_path: Path) -> ClusterConfig:
    """The section from the daemon's YAML file (the rest is read elsewhere)."""
    from joblet.config.loader import read_config_file

    raw = read_config_file(config_path)
    section = raw.get("cluster") or {}
    try:
        if not isinstance(section, Mapping):
            raise ValueError("cluster: must be a mapping")
        return parse_cluster_config(section)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config {config_path}: {exc}") from exc


def _labels(raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ValueError("cluster.labels must be a mapping of names to values")
    labels = {}
    for key, value in raw.items():
        if not _LABEL_KEY.fullmatch(str(key)):
            raise ValueError(f"cluster.labels: {key!r} is not a label name")
        if isinstance(value, Mapping | list):
            raise ValueError(f"cluster.labels.{key}: a label's value is one word")
        labels[str(key)] = str(value)
    return labels
