"""The workspaces' store on a real btrfs image: made once, reused after a
crash, a subvolume with a limit per job, removal whatever a job left, and
nothing left mounted or bound after it is closed."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.config.model import RootLayout
from joblet.workspaces import btrfs
from joblet.workspaces.store import (
    StoreUnavailable,
    close_quota_store,
    open_quota_store,
)

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop devices, mounts)"),
    pytest.mark.skipif(shutil.which("mkfs.btrfs") is None, reason="needs mkfs.btrfs"),
]

MIB = 1024 * 1024


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[RootLayout]:
    layout = RootLayout(tmp_path / "root")
    layout.run.mkdir(parents=True)
    layout.jobs.mkdir()
    yield layout
    close_quota_store(layout)
    subprocess.run(["umount", "-l", str(layout.workspaces)], capture_output=True, check=False)


def bound_loops(image: Path) -> str:
    return subprocess.run(
        ["losetup", "-j", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()


def loops_gone(image: Path, timeout: float = 15) -> bool:
    """A lazy unmount leaves the kernel to tear the file system down and free
    its loop device on its own: a loaded host takes a moment."""
    deadline = time.monotonic() + timeout
    while bound_loops(image) and time.monotonic() < deadline:
        time.sleep(0.1)
    return bound_loops(image) == ""


def write(path: Path, size: int) -> int:
    """Bytes written before the file system said no."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        try:
            while written < size:
                written += f.write(b"\0" * MIB)
            os.fsync(f.fileno())
        except OSError as exc:
            assert exc.errno == errno.EDQUOT, exc
    return written


def test_a_workspace_holds_its_limit_and_no_more(layout: RootLayout) -> None:
    store = open_quota_store(layout, 8 * MIB)
    work = store.create("job-a")
    assert btrfs.is_subvolume(str(work)) and work.stat().st_mode & 0o777 == 0o700
    assert write(work / "f", 64 * MIB) <= 8 * MIB
    other = store.create("job-b")
    assert write(other / "f", 6 * MIB) == 6 * MIB  # a limit of its own


def test_removal_takes_a_deep_tree_at_once(layout: RootLayout) -> None:
    store = open_quota_store(layout, 64 * MIB)
    work = store.create("deep")
    path = work
    for _ in range(300):
        path = path / "d"
        path.mkdir()
    (path / "f").write_bytes(b"x")
    os.symlink("/etc", work / "link")
    assert store.remove("deep") == []
    assert not work.exists()
    assert Path("/etc/passwd").exists()  # the link was not followed


def test_a_mounted_store_is_reused_and_closing_leaves_nothing(layout: RootLayout) -> None:
    first = open_quota_store(layout, 8 * MIB)
    (first.create("kept") / "data").write_text("still here")
    # A daemon killed and started again finds the store mounted and uses it.
    again = open_quota_store(layout, 8 * MIB)
    assert again.path("kept").joinpath("data").read_text() == "still here"
    assert close_quota_store(layout)
    assert not os.path.ismount(layout.workspaces)
    assert loops_gone(layout.workspace_image)
    # Mounted again from the image: the data is where it was.
    third = open_quota_store(layout, 8 * MIB)
    assert third.path("kept").joinpath("data").read_text() == "still here"


def test_the_image_is_sparse(layout: RootLayout) -> None:
    open_quota_store(layout, 8 * MIB)
    st = layout.workspace_image.stat()
    assert st.st_size >= 1 << 30
    assert st.st_blocks * 512 < 64 * MIB


def test_another_file_system_at_the_mount_point_is_refused(layout: RootLayout) -> None:
    layout.workspaces.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(layout.workspaces)], check=True)
    try:
        with pytest.raises(StoreUnavailable, match="tmpfs mount"):
            open_quota_store(layout, 8 * MIB)
    finally:
        subprocess.run(["umount", str(layout.workspaces)], check=True)


def test_no_mkfs_means_no_store_and_nothing_left(layout: RootLayout) -> None:
    with pytest.raises(StoreUnavailable, match="not found"):
        open_quota_store(layout, 8 * MIB, mkfs="mkfs.none-such")
    assert not layout.workspace_image.exists()
    assert not os.path.ismount(layout.workspaces)


def test_a_failed_create_leaves_no_subvolume(
    layout: RootLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_quota_store(layout, 8 * MIB)

    def refused(path: str, max_bytes: int) -> None:
        raise OSError(errno.EINVAL, "limit refused")

    monkeypatch.setattr(btrfs, "limit_referenced", refused)
    with pytest.raises(OSError, match="limit refused"):
        store.create("bad")
    assert not (layout.workspaces / "bad").exists()
