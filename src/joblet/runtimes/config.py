"""The `runtime:` section of the daemon config (camelCase keys).

runtime:
  maxSize: 10GB          # the largest built runtime (its tree, hard links once)
  allowedSources: [https://github.com/, https://codeload.github.com/]
  githubBaseUrl: https://github.com   # where `owner/repo` installs download from
  testTimeout: 2m        # TestRuntime and the install's own test
  build:                 # defaults a runtime.yml's build: section overrides
    timeout: 30m
    maxMemory: 2048      # MB
    maxCpu: 0            # percent of one core; 0: no limit
    scratchSize: 1GB     # the build's writable layers over the host paths
    networks: []         # networks a build may ask for besides none (loopback)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joblet.config.keys import Schema, unknown_keys
from joblet.config.units import parse_duration_s, parse_size_bytes
from joblet.errors import ConfigError, InvalidArgument
from joblet.runtimes.remote import (
    DEFAULT_ALLOWED_SOURCES,
    DEFAULT_GITHUB_BASE,
    check_allowed_sources,
)

BUILD_KEYS: Schema = dict.fromkeys(("timeout", "maxMemory", "maxCpu", "scratchSize", "networks"))
KEYS: Schema = {
    "maxSize": None,
    "allowedSources": None,
    "githubBaseUrl": None,
    "testTimeout": None,
    "fetchTimeout": None,
    "fetchTotalTimeout": None,
    "build": BUILD_KEYS,
}


@dataclass(frozen=True)
class BuildDefaults:
    timeout_s: float = 1800.0
    max_memory_mb: int = 2048
    max_cpu: int = 0
    scratch_bytes: int = 1 << 30
    networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuntimeConfig:
    max_size_bytes: int = 10 * 1000**3
    allowed_sources: tuple[str, ...] = DEFAULT_ALLOWED_SOURCES
    github_base_url: str = DEFAULT_GITHUB_BASE
    test_timeout_s: float = 120.0
    fetch_timeout_s: float = 30.0
    fetch_total_timeout_s: float = 600.0
    build: BuildDefaults = BuildDefaults()


def parse_runtime_config(section: Mapping[str, Any] | None) -> RuntimeConfig:
    """The `runtime:` mapping (None: all defaults); raises ConfigError."""
    data = dict(section or {})
    problems = unknown_keys(data, KEYS, "runtime")
    if problems:
        raise ConfigError("; ".join(problems))
    defaults = RuntimeConfig()
    try:
        return RuntimeConfig(
            max_size_bytes=_positive(
                parse_size_bytes(data.get("maxSize", defaults.max_size_bytes))
            ),
            allowed_sources=_sources(data.get("allowedSources", list(DEFAULT_ALLOWED_SOURCES))),
            github_base_url=_url(data.get("githubBaseUrl", defaults.github_base_url)),
            test_timeout_s=_positive(parse_duration_s(data.get("testTimeout", 120))),
            fetch_timeout_s=_positive(parse_duration_s(data.get("fetchTimeout", 30))),
            fetch_total_timeout_s=_positive(parse_duration_s(data.get("fetchTotalTimeout", 600))),
            build=_build(data.get("build") or {}),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"runtime: {exc}") from exc


def _build(raw: Any) -> BuildDefaults:
    if not isinstance(raw, Mapping):
        raise ValueError("build must be a mapping")
    d = BuildDefaults()
    networks = raw.get("networks", [])
    if not isinstance(networks, list) or not all(isinstance(n, str) and n for n in networks):
        raise ValueError("build.networks must be a list of network names")
    return BuildDefaults(
        timeout_s=_positive(parse_duration_s(raw.get("timeout", d.timeout_s))),
        max_memory_mb=_whole(raw.get("maxMemory", d.max_memory_mb), "build.maxMemory"),
        max_cpu=_whole(raw.get("maxCpu", d.max_cpu), "build.maxCpu"),
        scratch_bytes=_positive(parse_size_bytes(raw.get("scratchSize", d.scratch_bytes))),
        networks=tuple(networks),
    )


def _positive(value: float) -> Any:
    if value <= 0:
        raise ValueError(f"{value} must be above 0")
    return value


def _whole(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a whole number >= 0, not {value!r}")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError(f"githubBaseUrl must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _sources(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("allowedSources must be a list of URL prefixes")
    try:
        return check_allowed_sources(tuple(value))
    except InvalidArgument as exc:
        raise ValueError(f"allowedSources: {exc}") from exc


def load_runtime_config(config_path: Path) -> RuntimeConfig:
    """The section from the daemon's YAML file (the rest is read elsewhere)."""
    from joblet.config.loader import read_config_file

    section = read_config_file(config_path).get("runtime")
    if section is not None and not isinstance(section, Mapping):
        raise ConfigError("runtime: must be a mapping")
    return parse_runtime_config(section)
