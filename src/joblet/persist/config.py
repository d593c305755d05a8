"""The `persist:` section of joblet-config.yml as a frozen dataclass.

joblet:  {root: /opt/joblet}
persist:
  ipcSocket: ROOT/run/persist-ipc.sock
  grpcSocket: ROOT/run/persist-grpc.sock
  segmentSize: 16MB          # finish a segment after this much output
  segmentTime: 30s           # ... or after it has been open this long
  metricsSegmentTime: 10m    # the same for a job's metrics (a sample every 5 s)
  compressionLevel: 1        # zstd level, -5 (fastest) to 19
  clientBuffer: 64MB         # the daemon's buffer while persist is away
  retention: {maxAge: 7d, maxTotalSize: 10GB, sweepInterval: 5m, minFree: 0}
  listen: ""                 # host:port for remote queries over mTLS; empty: off
  backend: local             # local | s3 (archive/config.py: the `s3:` keys)
  cloudwatch: {}             # a live copy of logs (archive/cloudwatch_config.py)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joblet.config.keys import Schema
from joblet.config.units import parse_duration_s, parse_size_bytes
from joblet.errors import ConfigError
from joblet.persist.archive.cloudwatch_config import (
    CLOUDWATCH_KEYS,
    CloudWatchConfig,
    parse_cloudwatch,
)
from joblet.persist.archive.config import S3_KEYS, S3Config, parse_backend

KEYS: Schema = {
    "ipcSocket": None,
    "grpcSocket": None,
    "segmentSize": None,
    "segmentTime": None,
    "metricsSegmentTime": None,
    "compressionLevel": None,
    "clientBuffer": None,
    "retention": {"maxAge": None, "maxTotalSize": None, "sweepInterval": None, "minFree": None},
    "listen": None,
    "backend": None,
    "s3": S3_KEYS,
    "cloudwatch": CLOUDWATCH_KEYS,
}


@dataclass(frozen=True)
class RetentionConfig:
    max_age_s: float = 7 * 86400.0  # 0: no age limit
    max_total_bytes: int = 10 * 1000**3  # 0: no size limit
    sweep_interval_s: float = 300.0
    min_free_bytes: int = 0  # keep this much free on the disk under the root (0: off)


@dataclass(frozen=True)
class TlsListenConfig:
    """Remote queries: gRPC over TCP with mutual TLS, using the daemon's PEMs."""

    address: str
    server_cert: str
    server_key: str
    ca_cert: str


@dataclass(frozen=True)
class PersistConfig:
    root: Path
    ipc_socket: Path
    grpc_socket: Path
    segment_bytes: int = 16 * 1000**2
    segment_time_s: float = 30.0
    # A segment finished is fsynced and its job's index written again: every
    # 30 s per running job that was most of what storing samples cost.
    metrics_segment_time_s: float = 600.0
    compression_level: int = 1
    client_buffer_bytes: int = 64 * 1000**2
    retention: RetentionConfig = RetentionConfig()
    listen: TlsListenConfig | None = None
    s3: S3Config | None = None  # None: the local backend
    cloudwatch: CloudWatchConfig | None = None  # None: no live copy
    node_id: str = ""  # server.nodeId; empty: the root's state/node-id

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def metrics_dir(self) -> Path:
        return self.root / "metrics"

    @classmethod
    def for_root(cls, root: Path, **overrides: Any) -> PersistConfig:
        """Defaults under `root` (tests and benchmarks)."""
        run = root / "run"
        values: dict[str, Any] = {
            "ipc_socket": run / "persist-ipc.sock",
            "grpc_socket": run / "persist-grpc.sock",
        }
        values.update(overrides)
        return cls(root=root, **values)


def resolve_node_id(config: PersistConfig) -> str:
    """The node id the archive's keys name: server.nodeId, else the root's."""
    if config.node_id:
        return config.node_id
    try:
        found = (config.root / "state" / "node-id").read_text().strip()
    except OSError:
        found = ""
    if not found:
        raise ConfigError("persist.backend s3 needs a node id (server.nodeId or `joblet setup`)")
    return found


def load_persist_config(path: Path) -> PersistConfig:
    from joblet.config.loader import read_config_file

    raw = read_config_file(path)
    try:
        return parse_persist_config(raw)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"config {path}: persist: {exc}") from exc


def _mapping(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name!r} must be a mapping")
    return value


def parse_persist_config(raw: Mapping[str, Any]) -> PersistConfig:
    """Build from the whole config file's mapping (reads joblet.root and persist:)."""
    root = Path(_mapping(raw, "joblet").get("root", "/opt/joblet"))
    section = _mapping(raw, "persist")
    level = int(section.get("compressionLevel", 1))
    if not -5 <= level <= 19:
        raise ValueError(f"compressionLevel {level} must be between -5 and 19")
    segment_bytes = parse_size_bytes(section.get("segmentSize", "16MB"))
    if segment_bytes < 1024:
        raise ValueError("segmentSize must be at least 1KB")
    segment_time = parse_duration_s(section.get("segmentTime", "30s"))
    if segment_time <= 0:
        raise ValueError("segmentTime must be positive")
    metrics_segment_time = parse_duration_s(section.get("metricsSegmentTime", "10m"))
    if metrics_segment_time <= 0:
        raise ValueError("metricsSegmentTime must be positive")
    return PersistConfig(
        root=root,
        ipc_socket=Path(section.get("ipcSocket", root / "run" / "persist-ipc.sock")),
        grpc_socket=Path(section.get("grpcSocket", root / "run" / "persist-grpc.sock")),
        segment_bytes=segment_bytes,
        segment_time_s=segment_time,
        metrics_segment_time_s=metrics_segment_time,
        compression_level=level,
        client_buffer_bytes=parse_size_bytes(section.get("clientBuffer", "64MB")),
        retention=_retention(_mapping(section, "retention")),
        listen=_listen(section.get("listen") or "", _mapping(raw, "security")),
        s3=parse_backend(section),
        cloudwatch=parse_cloudwatch(section.get("cloudwatch")),
        node_id=str(_mapping(raw, "server").get("nodeId", "") or ""),
    )


def _retention(raw: Mapping[str, Any]) -> RetentionConfig:
    sweep = parse_duration_s(raw.get("sweepInterval", "5m"))
    if sweep <= 0:
        raise ValueError("retention.sweepInterval must be positive")
    return RetentionConfig(
        max_age_s=parse_duration_s(raw.get("maxAge", "7d")),
        max_total_bytes=parse_size_bytes(raw.get("maxTotalSize", "10GB")),
        sweep_interval_s=sweep,
        min_free_bytes=parse_size_bytes(raw.get("minFree", 0)),
    )


def _listen(address: str, security: Mapping[str, Any]) -> TlsListenConfig | None:
    if not address:
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen {address!r} must be host:port")
    missing = [k for k in ("serverCert", "serverKey", "caCert") if not security.get(k)]
    if missing:
        raise ValueError(f"listen needs security.{missing[0]} (mutual TLS)")
    return TlsListenConfig(
        address, security["serverCert"], security["serverKey"], security["caCert"]
    )
