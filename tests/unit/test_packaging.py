"""The wheel carries the license and the .proto contract next to its generated code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTOS = sorted((ROOT / "proto" / "joblet" / "api").glob("*.proto"))


def test_packaged_protos_match_the_contract() -> None:
    assert PROTOS, "no .proto files under proto/joblet/api"
    for proto in PROTOS:
        copy = ROOT / "src" / "joblet" / "api" / proto.name
        assert copy.is_file(), f"{copy} missing: run make proto"
        assert copy.read_bytes() == proto.read_bytes(), f"{copy} differs: run make proto"


def test_license_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # From a copy: a build/ folder left in the worktree would hide missing files.
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    # Without build isolation: the venv's setuptools, no index needed.
    args = [sys.executable, "-m", "pip", "wheel", str(tree), "-w", str(out)]
    args += ["--no-deps", "--no-build-isolation", "-q"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("joblet-*.whl")
    return built


def test_wheel_carries_protos_and_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = archive.read(metadata).decode()
    for proto in PROTOS:
        assert f"joblet/api/{proto.name}" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: Apache-2.0" in meta.splitlines()
