"""Run Python as if only `joblet[client]` were installed.

The packages installed here that `pip install joblet[client]` would not
bring (the closure of pyproject's base dependencies and `client` extra, read
from pyproject.toml, never from the possibly stale installed metadata) are
refused at import, and every attempt is written to a log: code that catches
the ImportError and carries on is caught too.

    python client_only.py -m MODULE ARGS...    # like python -m, with the block
    python client_only.py -c CODE

The block travels in JOBLET_CLIENT_ONLY_BLOCK (JSON list of top-level module
names) and the attempts go to JOBLET_CLIENT_ONLY_LOG, one name a line.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import runpy
import sys
import tomllib
import traceback
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
BLOCK_ENV = "JOBLET_CLIENT_ONLY_BLOCK"
LOG_ENV = "JOBLET_CLIENT_ONLY_LOG"
# What every virtual environment holds besides the packages asked for.
VENV_BASE = {"pip", "setuptools", "wheel"}


def _canon(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def client_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"].get("client", [])]


def distribution_closure(requirements: Iterable[str]) -> set[str]:
    """The installed distributions these requirements pull in, transitively
    (canonical names); a requirement not installed here is skipped."""
    from packaging.requirements import Requirement

    found: set[str] = set()
    todo = [(Requirement(text), "") for text in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = _canon(req.name)
        if name == "joblet":
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        wanted = sorted(req.extras)
        if name in found and not wanted:
            continue
        found.add(name)
        for text in dist.requires or []:
            for each in wanted or [""]:
                todo.append((Requirement(text), each))
    return found


def blocked_modules(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """Top-level modules installed here that no client dependency provides."""
    allowed = distribution_closure(client_requirements(pyproject)) | VENV_BASE
    blocked = set()
    for module, dists in metadata.packages_distributions().items():
        if module == "joblet" or module.startswith("_distutils"):
            continue
        if not any(_canon(dist) in allowed for dist in dists):
            blocked.add(module)
    return sorted(blocked)


def client_only_env(log: Path, pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    return {
        **os.environ,
        BLOCK_ENV: json.dumps(blocked_modules(pyproject)),
        LOG_ENV: str(log),
    }


def command(args: Sequence[str]) -> list[str]:
    """argv running `python ARGS` under the block (see client_only_env)."""
    return [sys.executable, str(Path(__file__).resolve()), *args]


class _Block(importlib.abc.MetaPathFinder):
    def __init__(self, blocked: set[str], log: str, package_dir: str) -> None:
        self.blocked = blocked
        self.log = log
        self.package_dir = package_dir

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name.partition(".")[0] not in self.blocked:
            return None
        importer = _importer(self.package_dir)
        if importer is not None:  # a package's own optional imports are its business
            with open(self.log, "a") as f:
                f.write(f"{name} imported by {importer}\n")
        raise ModuleNotFoundError(f"{name} is not a dependency of joblet[client]", name=name)


def _importer(package: str) -> str | None:
    """The joblet file and line whose import reached here, if one did."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if frame.filename.startswith("<frozen"):
            continue
        if frame.filename.startswith(package + os.sep):
            return f"{frame.filename}:{frame.lineno}"
        return None
    return None


def main(argv: list[str]) -> None:
    blocked = set(json.loads(os.environ[BLOCK_ENV]))
    spec = importlib.util.find_spec("joblet")
    assert spec is not None and spec.origin is not None
    package_dir = os.path.dirname(os.path.abspath(spec.origin))
    sys.meta_path.insert(0, _Block(blocked, os.environ[LOG_ENV], package_dir))
    # This file's directory is no place to import from for the code run.
    sys.path[0] = os.getcwd()
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    elif argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
    else:
        raise SystemExit(f"usage: {sys.argv[0]} -m MODULE ARGS... | -c CODE")


if __name__ == "__main__":
    main(sys.argv[1:])
