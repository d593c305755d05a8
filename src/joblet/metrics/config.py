"""The `metrics:` section of the daemon config (camelCase keys), parsed and
validated once at start-up into frozen dataclasses.

    metrics:
      interval: 5            # seconds between samples of a running job (>= 1)
      historySamples: 720    # samples kept in memory per job
      recentSamples: 50000   # ... and of all jobs together (older ones are read from persist)
      historyCacheBytes: 67108864  # histories read back from persist, kept in memory
      cloudMetadata: false   # ask cloud metadata endpoints (169.254.169.254)
      prometheus:
        enabled: false
        address: 127.0.0.1:9100
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from joblet.config.keys import Schema, unknown_keys
from joblet.errors import ConfigError

MIN_INTERVAL_S = 1.0
DEFAULT_INTERVAL_S = 5.0
DEFAULT_HISTORY_SAMPLES = 720  # one hour at the default interval
DEFAULT_HISTORY_CACHE_BYTES = 64 << 20  # about seven 24 h histories
# About 20 MB of samples: 2,000 running jobs keep their last 25 each, 69 or
# fewer their whole hour (a sample is some 430 bytes with its summary point).
DEFAULT_RECENT_SAMPLES = 50_000
KEYS: Schema = {
    "interval": None,
    "historySamples": None,
    "recentSamples": None,
    "historyCacheBytes": None,
    "cloudMetadata": None,
    "prometheus": {"enabled": None, "address": None},
}


@dataclass(frozen=True)
class PrometheusConfig:
    enabled: bool = False
    host: str = "127.0.0.1"  # loopback unless the operator says otherwise
    port: int = 9100


@dataclass(frozen=True)
class MetricsConfig:
    interval_s: float = DEFAULT_INTERVAL_S
    history_samples: int = DEFAULT_HISTORY_SAMPLES
    recent_samples: int = DEFAULT_RECENT_SAMPLES
    history_cache_bytes: int = DEFAULT_HISTORY_CACHE_BYTES
    cloud_metadata: bool = False
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)


def parse_metrics_config(section: Mapping[str, object] | None) -> MetricsConfig:
    """The `metrics:` mapping (None: all defaults); raises ConfigError."""
    data = dict(section or {})
    problems = unknown_keys(data, KEYS, "metrics")
    if problems:
        raise ConfigError("; ".join(problems))
    interval = _number(data.get("interval", DEFAULT_INTERVAL_S), "metrics.interval")
    if interval < MIN_INTERVAL_S:
        raise ConfigError(f"metrics.interval must be >= {MIN_INTERVAL_S:g} s, not {interval}")
    history = int(_number(data.get("historySamples", DEFAULT_HISTORY_SAMPLES), "historySamples"))
    if history < 1:
        raise ConfigError("metrics.historySamples must be >= 1")
    recent = int(_number(data.get("recentSamples", DEFAULT_RECENT_SAMPLES), "recentSamples"))
    if recent < 1:
        raise ConfigError("metrics.recentSamples must be >= 1")
    cache = _number(data.get("historyCacheBytes", DEFAULT_HISTORY_CACHE_BYTES), "historyCacheBytes")
    if cache < 0 or cache != int(cache):
        raise ConfigError("metrics.historyCacheBytes must be a whole number >= 0")
    return MetricsConfig(
        interval_s=interval,
        history_samples=history,
        recent_samples=recent,
        history_cache_bytes=int(cache),
        cloud_metadata=_bool(data.get("cloudMetadata", False), "metrics.cloudMetadata"),
        prometheus=_prometheus(data.get("prometheus")),
    )


def _prometheus(section: object) -> PrometheusConfig:
    if section is None:
        return PrometheusConfig()
    if not isinstance(section, Mapping):
        raise ConfigError("metrics.prometheus must be a mapping")
    enabled = _bool(section.get("enabled", False), "metrics.prometheus.enabled")
    address = str(section.get("address", "127.0.0.1:9100"))
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"metrics.prometheus.address must be HOST:PORT, not {address!r}")
    return PrometheusConfig(enabled=enabled, host=host.strip("[]") or "127.0.0.1", port=int(port))


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, not {value!r}")
    return float(value)


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    return value
