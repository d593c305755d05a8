from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from joblet.errors import InvalidArgument
from joblet.runtimes.remote_install import (
    LIB_DIR,
    SCRIPT,
    check_subpath,
    is_regular_file,
    prepare_unpack,
    read_confined,
    unpack_caps,
)


def test_subpath() -> None:
    assert check_subpath("") == ""
    assert check_subpath("/") == ""
    assert check_subpath("runtimes/py/") == "runtimes/py"
    for bad in ("../x", "a/../../b", "a\0b"):
        with pytest.raises(InvalidArgument):
            check_subpath(bad)


def test_read_confined_never_follows_a_link(tmp_path: Path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "sub" / "runtime.yml").write_text("name: x\n")
    assert read_confined(tmp_path / "src", "sub/runtime.yml", 100) == b"name: x\n"
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0")
    (tmp_path / "src" / "leaf.yml").symlink_to(secret)
    (tmp_path / "src" / "dirlink").symlink_to(tmp_path)
    for relative in ("leaf.yml", "dirlink/secret", "missing.yml"):
        with pytest.raises(InvalidArgument):
            read_confined(tmp_path / "src", relative, 100)
        assert not is_regular_file(tmp_path / "src", relative)
    assert is_regular_file(tmp_path / "src", "sub/runtime.yml")
    with pytest.raises(InvalidArgument, match="over 3 bytes"):
        read_confined(tmp_path / "src", "sub/runtime.yml", 3)


def test_the_unpack_script_runs_with_only_its_copied_modules(tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "runtime.yml").write_text("name: x\n")
    fetch = tmp_path / "fetch"
    fetch.mkdir()
    archive = fetch / "source.archive"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(payload, arcname="top")
    dest = tmp_path / "dest"
    dest.mkdir()
    prepare_unpack(fetch, str(archive), str(dest), unpack_caps(1 << 20), top=True)
    assert oct(os.stat(archive).st_mode & 0o777) == "0o644"
    script = (fetch / SCRIPT).read_text().replace("/src/", f"{fetch}/")
    # the host's python3 with the copy alone: -S, no site, no installed joblet
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (dest / "runtime.yml").read_text() == "name: x\n"
    assert sorted(p.name for p in (fetch / LIB_DIR / "joblet" / "runtimes").iterdir()) == [
        "__init__.py", "archive.py", "unpack.py",
    ]  # fmt: skip
