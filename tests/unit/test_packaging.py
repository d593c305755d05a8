"""Packaging: the wheel carries the license and the .proto contract next to its
generated code; pyproject.toml gives version ranges and the CI lock exact
versions within them; `joblet[client]` is enough for rnx and the SDK."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import client_only as client_only_env
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


# ---- dependencies: ranges in pyproject.toml, exact versions in the CI lock ----

LOCK = ROOT / "requirements" / "ci.lock"


def project_requirements() -> list[str]:
    """Every requirement of pyproject.toml: base and every extra, but the
    package's own extras (`joblet[daemon]` in `dev`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    found = [*project["dependencies"], *(req for extra in extras for req in extra)]
    return [req for req in found if canonicalize_name(Requirement(req).name) != "joblet"]


def locked_versions(text: str) -> dict[str, str]:
    pins = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"{LOCK.name}: not an exact pin: {raw!r}"
        pins[canonicalize_name(name)] = version
    return pins


def lock_problems(requirements: list[str], pins: dict[str, str]) -> list[str]:
    problems = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} is outside {req.specifier}")
    return problems


def test_lock_satisfies_every_range_of_pyproject() -> None:
    assert lock_problems(project_requirements(), locked_versions(LOCK.read_text())) == []


def test_lock_check_finds_a_pin_outside_its_range_or_missing() -> None:
    pins = locked_versions(LOCK.read_text())
    outside = dict(pins, grpcio="1.0.0")
    missing = {name: v for name, v in pins.items() if name != "psutil"}
    assert lock_problems(project_requirements(), outside) == [
        "grpcio==1.0.0 is outside <2,>=1.85.1"
    ]
    assert lock_problems(project_requirements(), missing) == ["psutil is not in the lock"]


def test_requirements_are_ranges_not_pins() -> None:
    pinned = [req for req in project_requirements() if "==" in req]
    assert pinned == [], "pin exact versions in the lock, not in pyproject.toml"


# ---- a client-only install: rnx and the SDK without the daemon's packages ----

DAEMON_ONLY = {"psutil", "pyseccomp", "zstandard", "pyroute2", "redis", "boto3"}


def client_modules() -> list[str]:
    """joblet modules rnx and the SDK can reach: every module of joblet.cli,
    joblet.client and joblet.sdk, and those their imports name (function
    level too), transitively."""
    src = ROOT / "src"
    seen: set[str] = set()
    todo = ["joblet", "joblet.aio"]
    for package in ("cli", "client", "sdk"):
        todo += [
            ".".join(path.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
            for path in sorted((src / "joblet" / package).rglob("*.py"))
        ]
    while todo:
        name = todo.pop()
        path = _module_file(src, name)
        if name in seen or path is None:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo.append(node.module)
                todo += [f"{node.module}.{alias.name}" for alias in node.names]
    return sorted(seen)


def _module_file(src: Path, name: str) -> Path | None:
    if name.partition(".")[0] != "joblet":
        return None
    base = src.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def client_only(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    log = tmp_path / "blocked.log"
    done = subprocess.run(
        client_only_env.command(args), env=client_only_env.client_only_env(log),
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    return done, log.read_text() if log.exists() else ""


def test_a_client_install_leaves_out_the_daemon_packages() -> None:
    blocked = set(client_only_env.blocked_modules())
    assert blocked >= DAEMON_ONLY
    assert not blocked & {"grpc", "google", "yaml", "cryptography", "pathspec"}


def test_rnx_and_the_sdk_import_nothing_but_client_dependencies(tmp_path: Path) -> None:
    modules = client_modules()
    assert "joblet.cli.main" in modules and "joblet.sdk.compat" in modules
    assert "joblet.daemon.server" not in modules
    code = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)"
    done, attempts = client_only(tmp_path, "-c", code, *modules)
    assert done.returncode == 0, done.stderr
    assert attempts == ""


def test_rnx_runs_without_the_daemon_packages(tmp_path: Path) -> None:
    for args in (
        ["--help"],
        ["completion", "bash"],
        ["job", "run", "--help"],
        ["workflow", "--help"],
    ):
        done, attempts = client_only(tmp_path, "-m", "joblet.cli.main", *args)
        assert done.returncode == 0, (args, done.stderr)
        assert attempts == "", args


def test_the_import_block_catches_a_daemon_module(tmp_path: Path) -> None:
    done, attempts = client_only(tmp_path, "-c", "import joblet.metrics.host")
    assert done.returncode != 0
    assert attempts.startswith("psutil imported by ")


def test_the_daemon_without_its_packages_says_what_to_install(tmp_path: Path) -> None:
    config = tmp_path / "joblet-config.yml"
    config.write_text(f"joblet: {{root: {tmp_path / 'root'}}}\n")
    for command in (["serve"], ["persist"], ["teardown"]):
        done, _ = client_only(
            tmp_path, "-m", "joblet.daemon.main", *command, "--config", str(config)
        )
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr
        assert "needs the daemon's packages" in done.stderr
        assert "pip install 'joblet[daemon]'" in done.stderr


def test_wheel_requires_only_the_client_packages_without_extras(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = archive.read(metadata).decode().splitlines()
    requires = [
        Requirement(line.split(":", 1)[1]) for line in meta if line.startswith("Requires-Dist:")
    ]
    base = {canonicalize_name(r.name) for r in requires if r.marker is None}
    daemon = {
        canonicalize_name(r.name)
        for r in requires
        if r.marker is not None and r.marker.evaluate({"extra": "daemon"})
    }
    assert base == {"grpcio", "protobuf", "cryptography", "pyyaml", "pathspec"}
    assert daemon - base == {"psutil", "pyseccomp", "zstandard", "pyroute2"}
    assert "Provides-Extra: client" in meta
