"""From `joblet ui` to the process that serves: the parsed config, handed over
through exec(2).

`joblet ui` parses its command line and the daemon config (argparse, YAML, the
whole config model: ~3 MB of modules the UI never touches again), then execs a
fresh interpreter, same pid, that imports only what serving needs. The secrets
(server key) travel in a memfd, never in argv or the environment.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from joblet.errors import ConfigError
from joblet.ui.config import UiConfig

RUNTIME_MODULE = "joblet.ui.runtime"


@dataclass(frozen=True)
class DaemonFacts:
    """What the UI uses of the daemon config: where its files are, its TLS."""

    root: Path
    crl: Path
    server_cert: str = ""
    server_key: str = ""
    ca_cert: str = ""


@dataclass(frozen=True)
class Handoff:
    ui: UiConfig
    daemon: DaemonFacts
    listen: str | None = None
    clients: Path | None = None
    exit_with_parent: bool = False
    log_level: str = "INFO"


def facts_of(daemon_config: Any) -> DaemonFacts:
    security = daemon_config.security
    return DaemonFacts(
        root=daemon_config.layout.root,
        crl=daemon_config.layout.crl,
        server_cert=security.server_cert,
        server_key=security.server_key,
        ca_cert=security.ca_cert,
    )


def _optional_path(value: Any) -> Path | None:
    return None if value is None else Path(value)


def encode(handoff: Handoff) -> bytes:
    ui = handoff.ui
    data = {
        "ui": {
            **ui.__dict__,
            "hosts": list(ui.hosts),
            "clients": None if ui.clients is None else str(ui.clients),
            "nodes": [[name, str(path)] for name, path in ui.nodes],
        },
        "daemon": {**handoff.daemon.__dict__, "root": str(handoff.daemon.root),
                   "crl": str(handoff.daemon.crl)},
        "listen": handoff.listen,
        "clients": None if handoff.clients is None else str(handoff.clients),
        "exit_with_parent": handoff.exit_with_parent,
        "log_level": handoff.log_level,
    }  # fmt: skip
    return json.dumps(data).encode()


def decode(blob: bytes) -> Handoff:
    try:
        data = json.loads(blob)
        ui = data["ui"]
        daemon = data["daemon"]
        return Handoff(
            ui=UiConfig(
                **{
                    **ui,
                    "hosts": tuple(ui["hosts"]),
                    "clients": _optional_path(ui["clients"]),
                    "nodes": tuple((n, Path(p)) for n, p in ui["nodes"]),
                }
            ),
            daemon=DaemonFacts(
                **{**daemon, "root": Path(daemon["root"]), "crl": Path(daemon["crl"])}
            ),
            listen=data["listen"],
            clients=_optional_path(data["clients"]),
            exit_with_parent=bool(data["exit_with_parent"]),
            log_level=str(data["log_level"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the UI's start-up data is unreadable: {exc}") from exc


def runtime_argv(fd: int) -> list[str]:
    return [sys.executable, "-m", RUNTIME_MODULE, "--handoff-fd", str(fd)]


def exec_runtime(handoff: Handoff) -> NoReturn:
    """Replace this process (same pid: a supervisor keeps tracking it)."""
    fd = os.memfd_create("joblet-ui-handoff", 0)  # inherited across exec
    os.write(fd, encode(handoff))
    os.lseek(fd, 0, os.SEEK_SET)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = runtime_argv(fd)
    os.execv(argv[0], argv)


def read_handoff(fd: int) -> Handoff:
    with os.fdopen(fd, "rb") as blob:  # closes it: the server key leaves the fd table
        return decode(blob.read())
