"""The names and help lines of rnx's commands, in a module that imports nothing.

`rnx --help` and the parser need them before, and without, importing the
modules that implement the commands (see `LazySubParsersAction`).
"""

from __future__ import annotations

# Top-level commands, in the order `rnx --help` lists them (before the shortcuts).
TOP_LEVEL: dict[str, str] = {
    "job": "run and manage jobs",
    "nodes": "list the configured nodes and ask each one (* marks the selected one)",
    "network": "manage custom job networks",
    "volume": "manage volumes",
    "workflow": "run and follow workflows: DAGs of jobs from a YAML file",
    "runtime": "install and manage runtimes",
    "gpu": "list the node's GPUs and the jobs holding them",
    "monitor": "host status and metrics",
    "ui": "print a one-time sign-in link to the node's web dashboard",
    "version": "print the versions of rnx and of the node's daemon",
    "completion": "print a shell completion script (bash, zsh or fish)",
}

# Commands for scripts, not people: parsed like the others, listed nowhere.
HIDDEN = ("__complete",)

# `rnx job ACTION`, in the order `rnx job --help` lists them.
JOB_ACTIONS: dict[str, str] = {
    "run": "run a command as a job",
    "list": "list jobs",
    "status": "show a job's status",
    "log": "print a job's output (live until it ends)",
    "stop": "stop a running job (SIGTERM, a grace period, then kill)",
    "kill": "send a signal to a running job (default KILL)",
    "wait": "wait for jobs to end; exit with the job's exit code",
    "cancel": "cancel a scheduled job",
    "delete": "delete a finished job and its logs",
    "delete-all": "delete every finished job",
    "metrics": "show a job's metrics (live until it ends), or a summary",
}

# Job actions that are also top-level commands (`rnx run`, `rnx list`...).
SHORTCUTS = ("run", "list", "status", "log", "stop", "kill", "wait", "delete")

# Other names of job actions, as docker users type them.
ALIASES: dict[str, tuple[str, ...]] = {
    "list": ("ps", "ls"),
    "log": ("logs",),
    "status": ("inspect",),
    "delete": ("rm",),
}
