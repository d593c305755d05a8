"""Preparing a runtime directory: hashed requirements, the wheel cache, and a real
`pip download` from a local wheel directory (no index, no network)."""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import pytest

from joblet.cli.runtime_prepare import prepare
from joblet.cli.wheels import (
    Pin,
    RequirementsError,
    choose,
    fits,
    machine_of,
    parse_requirements,
    pip_download_args,
)
from joblet.client.errors import CliError

PIP = [sys.executable, "-m", "pip"]
X86 = "numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
ARM = "numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"


def test_hashed_pins_are_parsed_with_continuations_and_comments() -> None:
    text = (
        "# header\n"
        "NumPy==2.2.6 \\\n    --hash=sha256:"
        + "a" * 64
        + " \\\n    --hash=sha256:"
        + "b" * 64
        + "\n"
        "\n"
        "python_dateutil==4.0.0 --hash=sha256:" + "c" * 64 + "  # trailing\n"
    )
    assert parse_requirements(text) == [
        Pin("numpy", "2.2.6", frozenset({"a" * 64, "b" * 64})),
        Pin("python-dateutil", "4.0.0", frozenset({"c" * 64})),
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("numpy>=2\n", "line 1: expected NAME==VERSION"),
        ("numpy==2.2.6\n", "numpy has no hash"),
        ("numpy==2.2.6 --hash=md5:abc\n", "line 1: expected"),
        ("# c\n-r other.txt\n", "line 2: expected"),
        ("numpy==1 --hash=sha256:" + "a" * 64 + " --index-url x\n", "line 1"),
    ],
)
def test_unpinned_or_unhashed_requirements_are_refused(text: str, why: str) -> None:
    with pytest.raises(RequirementsError, match=why):
        parse_requirements(text)


def test_wheels_fit_the_daemons_python_and_machine() -> None:
    pin = Pin("numpy", "2.2.6", frozenset())
    assert fits(X86, pin, "x86_64")
    assert not fits(X86, pin, "aarch64")
    assert fits(ARM, pin, "aarch64")
    assert not fits(X86.replace("cp311", "cp312"), pin, "x86_64")
    assert not fits(X86.replace("2.2.6", "2.2.5"), pin, "x86_64")
    assert not fits("numpy-2.2.6-cp311-cp311-musllinux_1_2_x86_64.whl", pin, "x86_64")
    assert fits("pytz-2026.6-py2.py3-none-any.whl", Pin("pytz", "2026.6", frozenset()), "aarch64")
    dateutil = Pin("python-dateutil", "4.0.0", frozenset())
    assert fits("python_dateutil-4.0.0-py3-none-any.whl", dateutil, "x86_64")
    assert machine_of("amd64") == "x86_64" and machine_of("arm64") == "aarch64"
    with pytest.raises(RequirementsError, match="riscv64"):
        machine_of("riscv64")
    assert pip_download_args("aarch64")[-2:] == ["--platform", "manylinux_2_28_aarch64"]


def test_a_wheel_counts_only_with_a_listed_hash() -> None:
    pin = Pin("numpy", "2.2.6", frozenset({"1" * 64}))
    assert choose([pin], {X86: "1" * 64, ARM: "2" * 64}, "x86_64") == ({pin: X86}, [])
    assert choose([pin], {X86: "3" * 64}, "x86_64") == ({}, [pin])


def make_wheel(directory: Path, name: str, version: str, tag: str = "py3-none-any") -> Path:
    """A minimal, valid wheel (metadata only) that pip can download and hash."""
    dist = f"{name}-{version}.dist-info"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{name}/__init__.py", f"VERSION = {version!r}\n")
        zf.writestr(
            f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        zf.writestr(
            f"{dist}/WHEEL",
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n",
        )
        zf.writestr(f"{dist}/RECORD", "")
    path = directory / f"{name}-{version}-{tag}.whl"
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A runtime dir pinning two wheels that lie in a local "index" directory,
    pip pointed at it alone (no index, no configuration of this machine)."""
    index = tmp_path / "index"
    index.mkdir()
    lines = []
    for name, version in (("alpha", "1.0"), ("beta", "2.0")):
        wheel = make_wheel(index, name, version)
        lines.append(
            f"{name}=={version} --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}"
        )
    make_wheel(index, "alpha", "1.1")  # a newer one pip must not take
    directory = tmp_path / "demo-rt"
    directory.mkdir()
    (directory / "runtime.yml").write_text("name: demo-rt\n")
    (directory / "build.sh").write_text("#!/bin/sh\n")
    (directory / "build.sh").chmod(0o755)
    (directory / "requirements.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    for var in ("PIP_CONSTRAINT", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    return directory


def test_missing_wheels_are_fetched_once_then_taken_from_the_cache(
    runtime: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    err = io.StringIO()
    files = prepare(runtime, err, arch="amd64", cache=cache, pip=PIP)
    assert [(f.path, f.mode & 0o111 != 0) for f in files] == [
        ("build.sh", True),
        ("requirements.txt", False),
        ("runtime.yml", False),
        ("wheels/alpha-1.0-py3-none-any.whl", False),
        ("wheels/beta-2.0-py3-none-any.whl", False),
    ]
    assert files[3].content == (cache / "alpha-1.0-py3-none-any.whl").read_bytes()
    assert "fetching 2 wheel(s) into" in err.getvalue()
    assert "fetching wheels:" in err.getvalue().splitlines()[-1]
    assert sorted(p.name for p in cache.iterdir()) == [
        "alpha-1.0-py3-none-any.whl",
        "beta-2.0-py3-none-any.whl",
    ]
    # offline now: a pip that fails is never run
    quiet = io.StringIO()
    again = prepare(runtime, quiet, arch="amd64", cache=cache, pip=["/bin/false"])
    assert again == files
    assert quiet.getvalue() == ""


def test_a_cached_wheel_with_another_hash_is_fetched_again(runtime: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    prepare(runtime, io.StringIO(), arch="amd64", cache=cache, pip=PIP)
    (cache / "beta-2.0-py3-none-any.whl").write_bytes(b"tampered")
    with pytest.raises(CliError, match="pip download"):
        prepare(runtime, io.StringIO(), arch="amd64", cache=cache, pip=["/bin/false"])
    files = prepare(runtime, io.StringIO(), arch="amd64", cache=cache, pip=PIP)
    assert b"tampered" not in [f.content for f in files]


def test_wheels_shipped_in_the_directory_are_uploaded_as_they_are(
    runtime: Path, tmp_path: Path
) -> None:
    prepare(runtime, io.StringIO(), arch="amd64", cache=tmp_path / "cache", pip=PIP)
    (runtime / "wheels").mkdir()
    for wheel in (tmp_path / "cache").iterdir():
        (runtime / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    files = prepare(
        runtime, io.StringIO(), arch="amd64", cache=tmp_path / "none", pip=["/bin/false"]
    )
    assert [f.path for f in files if f.path.startswith("wheels/")] == [
        "wheels/alpha-1.0-py3-none-any.whl",
        "wheels/beta-2.0-py3-none-any.whl",
    ]
    assert not (tmp_path / "none").exists()


def test_a_failing_pip_is_one_line_naming_the_cause(runtime: Path, tmp_path: Path) -> None:
    (runtime / "requirements.txt").write_text("gamma==9.9 --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(CliError) as err:
        prepare(runtime, io.StringIO(), arch="amd64", cache=tmp_path / "cache", pip=PIP)
    assert "pip download:" in err.value.message
    assert "\n" not in err.value.message
    (runtime / "requirements.txt").write_text("gamma>=1\n")
    with pytest.raises(CliError, match="line 1: expected NAME==VERSION"):
        prepare(runtime, io.StringIO(), arch="amd64", cache=tmp_path / "cache", pip=PIP)


def test_a_directory_without_requirements_is_uploaded_as_it_is(tmp_path: Path) -> None:
    directory = tmp_path / "plain"
    (directory / "sub").mkdir(parents=True)
    (directory / "runtime.yml").write_text("x")
    (directory / "sub" / "f").write_text("y")
    files = prepare(directory, io.StringIO(), pip=["/bin/false"])
    assert [f.path for f in files] == ["runtime.yml", "sub/f"]


def test_the_shipped_python_runtimes_pin_every_wheel_with_hashes_for_both_machines() -> None:
    root = Path(__file__).resolve().parents[3] / "runtimes"
    for name in ("python-3.11", "python-3.11-ml"):
        pins = parse_requirements((root / name / "requirements.txt").read_text())
        numpy = next(p for p in pins if p.name == "numpy")
        assert numpy.version != "1.24.2"  # Debian bookworm's python3-numpy
        assert len(numpy.hashes) == 2  # x86_64 and aarch64
    ml = {
        p.name
        for p in parse_requirements((root / "python-3.11-ml" / "requirements.txt").read_text())
    }
    assert {"numpy", "pandas", "scipy", "scikit-learn"} <= ml
