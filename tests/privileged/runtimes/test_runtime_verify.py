"""verify_tree on real files: special files refused, setuid/setgid cleared,
owners made root without following symlinks, size capped, hard links once."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from joblet.errors import FailedPrecondition, ResourceExhausted
from joblet.runtimes.verify import read_packages, tree_usage, verify_tree

pytestmark = pytest.mark.privileged

NOBODY = 65534


def _du(path: Path) -> int:
    out = subprocess.run(
        ["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[0])


def test_owner_root_setuid_cleared_links_not_followed(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    tool = tree / "bin" / "tool"
    tool.write_text("#!/bin/sh\n")
    os.chmod(tool, 0o6755)
    os.chown(tool, NOBODY, NOBODY)
    os.chown(tree / "bin", NOBODY, NOBODY)
    outside = tmp_path / "outside"
    outside.write_text("host file")
    os.chown(outside, NOBODY, NOBODY)
    os.chmod(outside, 0o4755)
    (tree / "escape").symlink_to(outside)
    os.chown(tree / "escape", NOBODY, NOBODY, follow_symlinks=False)

    verify_tree(tree, 1 << 30)

    info = os.lstat(tool)
    assert (info.st_uid, info.st_gid) == (0, 0)
    assert stat.S_IMODE(info.st_mode) == 0o755
    assert os.lstat(tree / "bin").st_uid == 0
    assert os.lstat(tree / "escape").st_uid == 0
    # the link's target outside the tree is untouched
    assert os.lstat(outside).st_uid == NOBODY
    assert stat.S_IMODE(os.lstat(outside).st_mode) == 0o4755


def test_setuid_cleared_on_files_already_owned_by_root(tmp_path: Path) -> None:
    # chown(2) drops the bits itself; a root-owned file needs no chown
    tree = tmp_path / "tree"
    tree.mkdir()
    for name, mode in (("suid", 0o4755), ("sgid", 0o2711), ("dir", 0o2755)):
        path = tree / name
        if name == "dir":
            path.mkdir()
        else:
            path.write_text("x")
        os.chmod(path, mode)
    verify_tree(tree, 1 << 30)
    for name, mode in (("suid", 0o755), ("sgid", 0o711), ("dir", 0o755)):
        assert stat.S_IMODE(os.lstat(tree / name).st_mode) == mode, name


@pytest.mark.parametrize("kind", ["fifo", "chardev", "socket"])
def test_special_files_fail_the_install(tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "tree"
    (tree / "lib").mkdir(parents=True)
    target = tree / "lib" / "x"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "chardev":
        os.mknod(target, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    else:
        import socket

        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(target))
    with pytest.raises(FailedPrecondition, match="/opt/runtime/lib/x"):
        verify_tree(tree, 1 << 30)


def test_over_max_size(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big").write_bytes(os.urandom(256 * 1024))
    with pytest.raises(ResourceExhausted, match=r"runtime\.maxSize"):
        verify_tree(tree, 100 * 1024)
    assert verify_tree(tree, 1 << 20).size_bytes >= 256 * 1024


def test_size_counts_hard_links_once_like_du(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_bytes(os.urandom(300 * 1024))
    os.link(tree / "a", tree / "b")
    (tree / "sub").mkdir()
    (tree / "sub" / "c").write_bytes(b"x" * 5000)
    result = verify_tree(tree, 1 << 30)
    assert result.size_bytes == _du(tree) == tree_usage(tree)
    assert result.files == 4


def test_packages_file_read_but_not_through_a_link(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / ".packages").write_text("numpy==2.1.0\n\nsix==1.16\n")
    assert read_packages(tree) == ("numpy==2.1.0", "six==1.16")
    (tree / ".packages").unlink()
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0\n")
    (tree / ".packages").symlink_to(secret)
    assert read_packages(tree) == ()
