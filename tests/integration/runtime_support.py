"""A daemon with runtimes for tests: a hand-made tree and the small resolver
of integration.runtime_daemon over a directory of runtime descriptions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .conftest import RunningDaemon, launch_daemon
from .runtime_daemon import ENV_DIR

TESTS_DIR = str(Path(__file__).resolve().parents[1])
HIDDEN_HOST_DIR = "/usr/share/doc"  # on every Debian host, under the /usr bind


def make_tree(base: Path) -> Path:
    """A runtime tree owned by root, as an install leaves it."""
    tree = base / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "share" / "doc").mkdir(parents=True)
    (tree / "share" / "doc" / "marker").write_text("from the runtime\n")
    (tree / "bin" / "rt-hello").write_text("#!/bin/sh\necho runtime says hi\n")
    (tree / "bin" / "rt-hello").chmod(0o755)
    for path in (tree, *tree.rglob("*")):
        os.lchown(path, 0, 0)
    return tree


def describe(top: Path, name: str, **data: Any) -> None:
    (top / name).mkdir(parents=True, exist_ok=True)
    (top / name / "runtime.json").write_text(json.dumps(data))


def launch_runtime_daemon(tmp: Path, top: Path, **sections: Any) -> RunningDaemon:
    top.mkdir(parents=True, exist_ok=True)
    pythonpath = os.pathsep.join(p for p in (TESTS_DIR, os.environ.get("PYTHONPATH")) if p)
    return launch_daemon(
        tmp,
        sections,
        env={ENV_DIR: str(top), "PYTHONPATH": pythonpath},
        module="integration.runtime_daemon",
    )


def events(top: Path) -> list[list[str]]:
    path = top / "events.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def write_plan(top: Path, name: str, plan: dict[str, Any]) -> None:
    """A build plan for runtime_daemon's watch, whole or not at all (the
    watch may read it at any moment: a half-written plan was a test's
    build that never started)."""
    builds = top / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    draft = builds / f"{name}.draft"
    draft.write_text(json.dumps(plan))
    draft.rename(builds / f"{name}.plan.json")
