"""Volumes in the job root plan: /volumes/NAME binds, nosuid/nodev, :ro."""

from __future__ import annotations

import pytest

from joblet.isolation import libc
from joblet.isolation.paths import UnsafePath
from joblet.isolation.rootfs import HostEntry, Kind, MakeDir, Mount, Protect, RootInputs, plan_root

ROOT = "/r/jobs/j1/root"
BASE = libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV


def inputs(
    volumes: tuple[tuple[str, str, bool], ...], allowed: dict[str, HostEntry] | None = None
) -> RootInputs:
    return RootInputs(ROOT, allowed or {}, "/r/jobs/j1/work", {}, 1 << 20, volumes)


def test_each_volume_is_bound_under_volumes_with_its_mode() -> None:
    ops = plan_root(inputs((("/r/volumes/a/mnt", "a", False), ("/r/volumes/b/mnt", "b", True))))
    assert MakeDir(f"{ROOT}/volumes") in ops
    a = ops.index(Mount("/r/volumes/a/mnt", f"{ROOT}/volumes/a", None, libc.MS_BIND))
    b = ops.index(Mount("/r/volumes/b/mnt", f"{ROOT}/volumes/b", None, libc.MS_BIND))
    assert ops[a + 1] == Protect(f"{ROOT}/volumes/a", BASE)
    assert ops[b + 1] == Protect(f"{ROOT}/volumes/b", BASE | libc.MOUNT_ATTR_RDONLY)
    assert ops.index(MakeDir(f"{ROOT}/volumes/a")) < a


def test_no_volumes_no_directory() -> None:
    assert not any(isinstance(op, MakeDir) and "volumes" in op.path for op in plan_root(inputs(())))


@pytest.mark.parametrize("name", ["../etc", "a/b", "..", ".", ""])
def test_names_that_leave_volumes_are_refused(name: str) -> None:
    with pytest.raises(UnsafePath):
        plan_root(inputs((("/r/volumes/x/mnt", name, False),)))


@pytest.mark.parametrize("kind", [Kind.DIR, Kind.SYMLINK])
def test_a_host_volumes_path_cannot_host_them(kind: Kind) -> None:
    allowed = {"/volumes": HostEntry(kind, "/tmp" if kind is Kind.SYMLINK else "")}
    with pytest.raises(UnsafePath, match="/volumes"):
        plan_root(inputs((("/r/volumes/a/mnt", "a", False),), allowed))
    missing = {"/volumes": HostEntry(Kind.MISSING)}
    assert plan_root(inputs((("/r/volumes/a/mnt", "a", False),), missing))
