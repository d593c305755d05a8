"""The sealed copy the jobs' init is exec'd from: same bytes, runnable, and
neither its content nor its metadata can change, not even for root."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
import sys
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


def test_a_launcher_where_memfds_may_not_run_says_so(tmp_path: Path) -> None:
    """vm.memfd_noexec=2 refuses executable memfds. The sysctl belongs to a
    pid namespace (Linux 6.3+), so it is set in one of the test's own."""
    if os.geteuid() != 0 or not os.path.exists("/proc/sys/vm/memfd_noexec"):
        pytest.skip("needs root and vm.memfd_noexec (Linux 6.3+)")
    launcher = f"{sys.executable} -m joblet.isolation.launcher"
    script = (
        "echo 2 > /proc/sys/vm/memfd_noexec && exec "
        f"{launcher} --socket {tmp_path}/l.sock --state-dir {tmp_path}/state"
    )
    done = subprocess.run(["unshare", "--pid", "--fork", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("joblet-launcher: cannot start: "), done.stderr
    assert "memfd_noexec" in done.stderr
