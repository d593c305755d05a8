"""The sealed copy the jobs' init is exec'd from: same bytes, runnable, and
neither its content nor its metadata can change, not even for root."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from joblet.isolation.prepare import find_tini
from joblet.isolation.sealed import SEALS, sealed_copy

pytestmark = pytest.mark.privileged


@pytest.fixture
def copy() -> Iterator[int]:
    if os.geteuid() != 0:
        pytest.skip("needs root: the immutable flag takes CAP_LINUX_IMMUTABLE")
    fd = sealed_copy(find_tini(), "tini")
    yield fd
    os.close(fd)


def _errno(call: Callable[[], object]) -> int:
    with pytest.raises(OSError) as info:
        call()
    return info.value.errno or 0


def test_the_copy_holds_the_same_bytes_and_runs(copy: int) -> None:
    with open(find_tini(), "rb") as f:
        assert os.pread(copy, 4 << 20, 0) == f.read()
    assert stat.S_IMODE(os.fstat(copy).st_mode) == 0o555
    assert os.readlink(f"/proc/self/fd/{copy}") == "/memfd:tini (deleted)"
    out = subprocess.run([f"/proc/self/fd/{copy}", "--version"], pass_fds=(copy,),
                         capture_output=True, check=True)  # fmt: skip
    assert b"tini version" in out.stdout + out.stderr


def test_its_content_is_sealed(copy: int) -> None:
    assert fcntl.fcntl(copy, fcntl.F_GET_SEALS) == SEALS
    assert _errno(lambda: os.pwrite(copy, b"x", 0)) == errno.EPERM
    assert _errno(lambda: os.ftruncate(copy, 0)) == errno.EPERM
    assert _errno(lambda: fcntl.fcntl(copy, fcntl.F_ADD_SEALS, 0)) == errno.EPERM


def test_its_metadata_is_immutable_even_for_root(copy: int) -> None:
    path = f"/proc/self/fd/{copy}"
    assert _errno(lambda: os.fchmod(copy, 0o4755)) == errno.EPERM
    assert _errno(lambda: os.fchown(copy, 1, 1)) == errno.EPERM
    assert _errno(lambda: os.utime(path)) == errno.EPERM
    assert _errno(lambda: os.setxattr(path, "user.x", b"1")) == errno.EPERM
    assert stat.S_IMODE(os.fstat(copy).st_mode) == 0o555


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sealed_copy(f"{tmp_path}/no-such-file", "tini")
