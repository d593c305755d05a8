"""The `audit:` section of the daemon config.

audit:
  enabled: true      # false: no audit log at all
  maxSize: 10MB      # rotate once ROOT/logs/audit.log passes this
  maxFiles: 5        # rotated files kept: audit.log.1 (newest) .. audit.log.5
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from joblet.config.keys import Schema, unknown_keys
from joblet.config.units import parse_size_bytes
from joblet.errors import ConfigError

KEYS: Schema = dict.fromkeys(("enabled", "maxSize", "maxFiles"))
AUDIT_FILE = "audit.log"
FILE_MODE = 0o600


@dataclass(frozen=True)
class AuditConfig:
    enabled: bool = True
    max_bytes: int = 10 * 1000 * 1000
    max_files: int = 5


def parse_audit_config(section: Mapping[str, object] | None) -> AuditConfig:
    """The `audit:` mapping (None: all defaults); raises ConfigError."""
    data = dict(section or {})
    problems = unknown_keys(data, KEYS, "audit")
    if problems:
        raise ConfigError("; ".join(problems))
    base = AuditConfig()
    enabled = data.get("enabled", base.enabled)
    if not isinstance(enabled, bool):
        raise ConfigError("audit.enabled must be true or false")
    size = data.get("maxSize", base.max_bytes)
    try:
        max_bytes = parse_size_bytes(size)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"audit.maxSize: {exc}") from exc
    files = data.get("maxFiles", base.max_files)
    if isinstance(files, bool) or not isinstance(files, int) or not 0 <= files <= 100:
        raise ConfigError("audit.maxFiles must be an integer from 0 to 100")
    if max_bytes < 4096:
        raise ConfigError("audit.maxSize must be at least 4KB")
    return AuditConfig(enabled, max_bytes, files)
