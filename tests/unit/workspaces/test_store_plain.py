"""Workspace placement and sizing that need no root: plain directories, the
mountinfo parser and the cap setup writes."""

from __future__ import annotations

from pathlib import Path

from joblet.config.host_disk import GIB, default_workspace_bytes
from joblet.config.model import RootLayout
from joblet.workspaces.store import WorkspaceStore, mounted_fstype, plain_store

MOUNTINFO = (
    "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "90 22 7:3 / /srv/j\\040oblet/workspaces rw,nosuid,nodev - btrfs /dev/loop3 rw\n"
    "91 22 0:55 / /srv/other rw - tmpfs tmpfs rw\n"
)


def test_mounted_fstype_reads_the_type_after_the_separator() -> None:
    assert mounted_fstype(MOUNTINFO, "/srv/j oblet/workspaces") == "btrfs"
    assert mounted_fstype(MOUNTINFO, "/srv/other") == "tmpfs"
    assert mounted_fstype(MOUNTINFO, "/srv/none") is None


def test_the_topmost_mount_wins() -> None:
    stacked = MOUNTINFO + "92 90 0:56 / /srv/other rw - btrfs /dev/loop4 rw\n"
    assert mounted_fstype(stacked, "/srv/other") == "btrfs"


def test_a_plain_store_keeps_workspaces_in_the_job_directory(tmp_path: Path) -> None:
    layout = RootLayout(tmp_path)
    store = plain_store(layout)
    layout.job_dir("j1").mkdir(parents=True)
    path = store.create("j1")
    assert path == layout.job_dir("j1") / "work"
    assert path.stat().st_mode & 0o777 == 0o700
    assert store.path("j1") == path
    assert store.quota_bytes == 0 and store.remove("j1") == []


def test_a_job_from_before_the_store_keeps_its_plain_workspace(tmp_path: Path) -> None:
    layout = RootLayout(tmp_path)
    (tmp_path / "workspaces").mkdir()
    store = WorkspaceStore(layout, 1 << 20, tmp_path / "workspaces")
    assert store.path("old") == layout.job_dir("old") / "work"
    (tmp_path / "workspaces" / "new").mkdir()
    assert store.path("new") == tmp_path / "workspaces" / "new"


def test_the_default_cap_is_a_tenth_of_the_disk_within_bounds() -> None:
    assert default_workspace_bytes(250 * GIB) == 25 * GIB
    assert default_workspace_bytes(4 * GIB) == 1 * GIB
    assert default_workspace_bytes(4000 * GIB) == 100 * GIB
    assert default_workspace_bytes(33 * GIB) % (1024 * 1024) == 0
