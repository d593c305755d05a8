"""The workflow core stays pure: no module of it imports I/O, clock or
concurrency, so the executor can be driven by tests and replayed after a
restart without anything of the world leaking in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import joblet.workflows

PURE = (
    "aggregate",
    "envvars",
    "executor",
    "expressions",
    "graph",
    "jobfields",
    "jobspec",
    "masking",
    "model",
    "yamlnodes",
    "yamlspec",
)
FORBIDDEN = {"os", "asyncio", "time", "socket", "subprocess", "threading", "grpc", "pathlib"}
PACKAGE = Path(joblet.workflows.__file__).parent


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_import_no_io(name: str) -> None:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
