"""The init's /proc entries bound from its own listing (procmask), against
the real kernel: a tmpfs stands in for /proc so that entries can appear."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from joblet.isolation import libc, procmask

pytestmark = pytest.mark.privileged


def _in_mount_namespace(body: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Run `body` in a forked child with a private mount namespace; its result."""
    if os.geteuid() != 0:
        pytest.skip("needs root: mount namespaces")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            libc.unshare(libc.CLONE_NEWNS)
            libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE, None)
            out = body()
        except BaseException as exc:
            out = {"error": repr(exc)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(data)
    assert "error" not in result, result["error"]
    return result


def _write_errno(path: str) -> int:
    try:
        with open(path, "w") as f:
            f.write("x")
    except OSError as exc:
        return exc.errno or 0
    return 0


def _mounts_at(path: str) -> int:
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split()[4] == path)


def test_entries_that_appear_later_are_bound_on_the_next_listing(tmp_path: Path) -> None:
    proc = str(tmp_path / "proc")
    os.mkdir(proc)

    def body() -> dict[str, object]:
        libc.mount("tmpfs", proc, "tmpfs", 0, "size=64k")
        for name in ("meminfo", "kcore"):
            Path(proc, name).write_text("host\n")
        readonly, masked = (b"meminfo", b"modules"), (b"kcore", b"keys")
        first = procmask.bind_entries(os.fsencode(proc), readonly, masked)
        before = {
            "meminfo": _write_errno(f"{proc}/meminfo"),
            "kcore": Path(proc, "kcore").read_text(),
            "modules_exists": os.path.exists(f"{proc}/modules"),
        }
        # A module loads: its entries appear after the first listing.
        Path(proc, "modules").write_text("host\n")
        Path(proc, "keys").write_text("host\n")
        second = procmask.bind_entries(os.fsencode(proc), readonly, masked)
        return {
            "first": first,
            "second": second,
            "before": before,
            "modules": _write_errno(f"{proc}/modules"),
            "keys": Path(proc, "keys").read_text(),
            "meminfo_mounts": _mounts_at(f"{proc}/meminfo"),
            # The directory itself stays writable (a job's /proc/self/...).
            "dir_writable": _write_errno(f"{proc}/other") == 0,
        }

    result = _in_mount_namespace(body)
    assert result["first"] == 0 and result["second"] == 0
    assert result["before"] == {"meminfo": errno.EROFS, "kcore": "", "modules_exists": False}
    assert result["modules"] == errno.EROFS  # bound although absent at the first listing
    assert result["keys"] == ""
    assert result["meminfo_mounts"] == 1  # bound once, not again
    assert result["dir_writable"]
