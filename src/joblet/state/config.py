"""The `state:` section of joblet-config.yml as frozen dataclasses.

    state:
      backend: sqlite            # sqlite (default) | memory | redis | dynamodb
      socket: ROOT/run/state-ipc.sock
      writeTimeout: 5s           # per backend write attempt
      writeRetries: 3            # attempts after the first, with backoff
      bufferSize: 10000          # daemon-side events held while the helper is away
      sqlite:   {path: ROOT/state/jobs.db}
      redis:    {host: 127.0.0.1, port: 6379, db: 0, password: "", keyPrefix: "joblet:",
                 tls: false | {enabled: true, caFile: ..., certFile: ..., keyFile: ...,
                               verify: true}}
      dynamodb: {region: us-east-1, table: joblet-jobs, endpoint: "", ttlDays: 0,
                 createTable: false}

ROOT is `joblet.root` of the same file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joblet.config.keys import Schema
from joblet.config.units import parse_duration_s
from joblet.errors import ConfigError

BACKENDS = ("sqlite", "memory", "redis", "dynamodb")
_REDIS_TLS_KEYS: Schema = dict.fromkeys(("enabled", "caFile", "certFile", "keyFile", "verify"))
KEYS: Schema = {
    "backend": None,
    "socket": None,
    "writeTimeout": None,
    "writeRetries": None,
    "bufferSize": None,
    "sqlite": {"path": None},
    "redis": {
        **dict.fromkeys(("host", "port", "db", "password", "keyPrefix")),
        "tls": _REDIS_TLS_KEYS,  # or true / false
    },
    "dynamodb": dict.fromkeys(("region", "table", "endpoint", "ttlDays", "createTable")),
}
DEFAULT_ROOT = Path("/opt/joblet")


@dataclass(frozen=True)
class SqliteConfig:
    path: Path


@dataclass(frozen=True)
class RedisTlsConfig:
    enabled: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    verify: bool = True


@dataclass(frozen=True)
class RedisConfig:
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    password: str = ""
    key_prefix: str = "joblet:"
    tls: RedisTlsConfig = field(default_factory=RedisTlsConfig)


@dataclass(frozen=True)
class DynamoConfig:
    region: str = "us-east-1"
    table: str = "joblet-jobs"
    endpoint: str = ""  # "" = AWS's own endpoint for the region
    ttl_days: float = 0.0  # 0 = records never expire
    create_table: bool = False


@dataclass(frozen=True)
class StateConfig:
    socket: Path
    sqlite: SqliteConfig
    backend: str = "sqlite"
    write_timeout_s: float = 5.0
    write_retries: int = 3
    buffer_size: int = 10_000
    redis: RedisConfig = field(default_factory=RedisConfig)
    dynamodb: DynamoConfig = field(default_factory=DynamoConfig)

    @classmethod
    def for_root(cls, root: Path, **overrides: Any) -> StateConfig:
        """The defaults for a daemon rooted at `root`."""
        return cls(
            socket=root / "run" / "state-ipc.sock",
            sqlite=SqliteConfig(root / "state" / "jobs.db"),
            **overrides,
        )


def load_state_config(path: Path) -> StateConfig:
    """The `state:` section of the config file at `path`; ConfigError when invalid."""
    from joblet.config.loader import read_config_file

    raw = read_config_file(path)
    try:
        return parse_state_config(raw)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"config {path}: state: {exc}") from exc


def parse_state_config(raw: Mapping[str, Any]) -> StateConfig:
    """`raw` is the whole config file; ROOT comes from its `joblet.root`."""
    root = Path(_section(raw, "joblet").get("root", DEFAULT_ROOT))
    state = _section(raw, "state")
    defaults = StateConfig.for_root(root)
    backend = str(state.get("backend", defaults.backend))
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    timeout = parse_duration_s(state.get("writeTimeout", defaults.write_timeout_s))
    if timeout <= 0:
        raise ValueError("writeTimeout must be > 0")
    retries = int(state.get("writeRetries", defaults.write_retries))
    buffer_size = int(state.get("bufferSize", defaults.buffer_size))
    if retries < 0 or buffer_size < 1:
        raise ValueError("writeRetries must be >= 0 and bufferSize >= 1")
    sqlite_path = _section(state, "sqlite").get("path", defaults.sqlite.path)
    return StateConfig(
        backend=backend,
        socket=Path(state.get("socket", defaults.socket)),
        write_timeout_s=timeout,
        write_retries=retries,
        buffer_size=buffer_size,
        sqlite=SqliteConfig(Path(sqlite_path)),
        redis=_redis(_section(state, "redis")),
        dynamodb=_dynamodb(_section(state, "dynamodb")),
    )


def _section(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"section {name!r} must be a mapping")
    return value


def _redis(raw: Mapping[str, Any]) -> RedisConfig:
    defaults = RedisConfig()
    port = int(raw.get("port", defaults.port))
    if not 0 < port <= 65535:
        raise ValueError(f"redis.port {port} is out of range")
    return RedisConfig(
        host=str(raw.get("host", defaults.host)),
        port=port,
        db=int(raw.get("db", defaults.db)),
        password=str(raw.get("password", "") or ""),
        key_prefix=str(raw.get("keyPrefix", defaults.key_prefix)),
        tls=_redis_tls(raw.get("tls", False)),
    )


def _redis_tls(raw: Any) -> RedisTlsConfig:
    if isinstance(raw, bool) or raw is None:
        return RedisTlsConfig(enabled=bool(raw))
    if not isinstance(raw, Mapping):
        raise ValueError("redis.tls must be true, false or a mapping")
    return RedisTlsConfig(
        enabled=bool(raw.get("enabled", True)),
        ca_file=str(raw.get("caFile", "") or ""),
        cert_file=str(raw.get("certFile", "") or ""),
        key_file=str(raw.get("keyFile", "") or ""),
        verify=bool(raw.get("verify", True)),
    )


def _dynamodb(raw: Mapping[str, Any]) -> DynamoConfig:
    defaults = DynamoConfig()
    ttl_days = float(raw.get("ttlDays", defaults.ttl_days))
    if ttl_days < 0:
        raise ValueError("dynamodb.ttlDays must be >= 0")
    return DynamoConfig(
        region=str(raw.get("region", defaults.region)),
        table=str(raw.get("table", defaults.table)),
        endpoint=str(raw.get("endpoint", "") or ""),
        ttl_days=ttl_days,
        create_table=bool(raw.get("createTable", defaults.create_table)),
    )
