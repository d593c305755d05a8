"""The `volumes:` section of the daemon config (camelCase keys).

    volumes:
      maxSize: 100GB     # the largest volume CreateVolume accepts (units: 500MB, 1GiB)
      maxCount: 0        # volumes on this node; 0: no limit
      maxMemorySize: 8GB # the largest memory (tmpfs) volume; default: half the host's RAM

Memory volumes are tmpfs: their data lives in RAM (and swap), counts against
no job's memory limit, survives a daemon restart and is gone after a reboot
(the volume is then recreated empty at start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from joblet.config.keys import Schema, unknown_keys
from joblet.config.units import parse_size_bytes
from joblet.errors import ConfigError

DEFAULT_MAX_SIZE = 100 * 1000**3
KEYS: Schema = {"maxSize": None, "maxCount": None, "maxMemorySize": None}


@dataclass(frozen=True)
class VolumesConfig:
    max_size_bytes: int = DEFAULT_MAX_SIZE
    max_count: int = 0  # 0: no limit
    max_memory_bytes: int | None = None  # None: half the host's RAM


def parse_volumes_config(section: Mapping[str, object] | None) -> VolumesConfig:
    """The `volumes:` mapping (None: all defaults); raises ConfigError."""
    data = dict(section or {})
    problems = unknown_keys(data, KEYS, "volumes")
    if problems:
        raise ConfigError("; ".join(problems))
    max_size = _size(data.get("maxSize", DEFAULT_MAX_SIZE), "maxSize")
    raw_memory = data.get("maxMemorySize")
    max_memory = None if raw_memory is None else _size(raw_memory, "maxMemorySize")
    count = data.get("maxCount", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"volumes.maxCount must be a whole number >= 0, not {count!r}")
    return VolumesConfig(max_size_bytes=max_size, max_count=count, max_memory_bytes=max_memory)


def _size(raw: object, key: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ConfigError(f"volumes.{key} must be a size such as 100GB, not {raw!r}")
    try:
        size = parse_size_bytes(raw)
    except ValueError as exc:
        raise ConfigError(f"volumes.{key}: {exc}") from exc
    if size <= 0:
        raise ConfigError(f"volumes.{key} must be above 0")
    return size


def load_volumes_config(config_path: Path) -> VolumesConfig:
    """The section from the daemon's YAML file (the rest is read elsewhere)."""
    from joblet.config.loader import read_config_file

    raw = read_config_file(config_path)
    section = raw.get("volumes")
    if section is not None and not isinstance(section, Mapping):
        raise ConfigError("volumes: must be a mapping")
    return parse_volumes_config(section)
