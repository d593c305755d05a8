"""`joblet config check FILE`: what the daemon and its helpers would refuse
in a config file, without starting anything."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from joblet.config.loader import key_problems, parse_daemon_config, read_yaml_mapping
from joblet.errors import ConfigError
from joblet.persist.config import parse_persist_config
from joblet.runtimes.config import parse_runtime_config
from joblet.state.config import parse_state_config
from joblet.volumes.config import parse_volumes_config

Parser = Callable[[Mapping[str, Any]], object]

# Who reads the file, and under which name a problem of theirs is reported.
READERS: tuple[tuple[str, Parser], ...] = (
    ("", parse_daemon_config),
    ("persist: ", parse_persist_config),
    ("state: ", parse_state_config),
    ("volumes: ", lambda raw: parse_volumes_config(_section(raw, "volumes"))),
    ("", lambda raw: parse_runtime_config(_section(raw, "runtime", "runtime: "))),
)


def check_config_file(path: Path) -> list[str]:
    """Every problem found, one line each naming the file; [] when it is fine.
    Unknown keys come first, all of them; then each reader's first problem
    with the values (they are not read while a key is unknown)."""
    try:
        raw = read_yaml_mapping(path)
    except ConfigError as exc:
        return [str(exc)]
    problems = key_problems(raw, path)
    if problems:
        return problems
    for prefix, parse in READERS:
        try:
            parse(raw)
        except (ConfigError, TypeError, ValueError, KeyError) as exc:
            problems.append(f"{path}: {prefix}{exc}")
    return problems


def _section(raw: Mapping[str, Any], name: str, prefix: str = "") -> Mapping[str, Any] | None:
    section = raw.get(name)
    if section is not None and not isinstance(section, Mapping):
        raise ConfigError(f"{prefix}must be a mapping")
    return section
