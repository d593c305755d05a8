"""The names and help lines of rnx's commands, in a module that imports nothing.

`rnx --help` and the parser need them before, and without, importing the
modules that implement the commands (see `LazySubParsersAction`).
"""

from __future__ import annotations

# Top-level commands, in the order `rnx --help` lists them (before the shortcuts).
TOP_LEVEL: dict[str, str] = {
    "job": "run and manage jobs",
    "nodes": "list the configured nodes (* marks the selected one)",
    "network": "manage custom job networks",
    "volume": "manage volumes",
    "runtime": "install and manage runtimes",
    "monitor": "host status and metrics",
}

# `rnx job ACTION`, in the order `rnx job --help` lists them.
JOB_ACTIONS: dict[str, str] = {
    "run": "run a command as a job",
    "list": "list jobs",
    "status": "show a job's status",
    "log": "print a job's output (live until it ends)",
    "stop": "stop a running job",
    "cancel": "cancel a scheduled job",
    "delete": "delete a finished job and its logs",
    "delete-all": "delete every finished job",
    "metrics": "show a job's metrics (live until it ends), or a summary",
}

# Job actions that are also top-level commands (`rnx run`, `rnx list`...).
SHORTCUTS = ("run", "list", "status", "log", "stop")
