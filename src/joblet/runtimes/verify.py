"""Checking a built tree before it becomes a runtime, never following a symlink.

A build runs as an unprivileged user inside its sandbox and can leave
anything under its staging directory. Before the tree is committed each entry
is looked at from its parent's descriptor (os.fwalk, no symlink followed):
device nodes, FIFOs and sockets fail the install; setuid and setgid bits are
cleared; everything is chowned to root without following links (chown -h),
so no job can write a runtime by owning its files; and the disk usage is
summed (hard links once) against runtime.maxSize.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from joblet.errors import FailedPrecondition, ResourceExhausted

PACKAGES_FILE = ".packages"
MAX_PACKAGES_BYTES = 1024 * 1024
_SPECIAL = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


@dataclass(frozen=True)
class VerifiedTree:
    size_bytes: int  # disk usage, hard links once (what `du -s --block-size=1` says)
    files: int
    packages: tuple[str, ...]  # from the tree's .packages, if the build wrote one


def verify_tree(tree: Path, max_bytes: int, owner: tuple[int, int] = (0, 0)) -> VerifiedTree:
    """Make `tree` safe to mount into jobs, or raise naming the first problem:
    FailedPrecondition for a special file, ResourceExhausted when over `max_bytes`."""
    root = os.lstat(tree)
    if not stat.S_ISDIR(root.st_mode):
        raise FailedPrecondition("the build left no directory at /opt/runtime")
    _fix(str(tree), None, root, owner)
    try:
        return _walk(tree, root, max_bytes, owner)
    except RecursionError as exc:  # os.fwalk recurses once per level
        raise FailedPrecondition("the built runtime's tree is too deep") from exc


def _walk(tree: Path, root: os.stat_result, max_bytes: int, owner: tuple[int, int]) -> VerifiedTree:
    seen: set[tuple[int, int]] = set()
    size = files = 0
    for top, dirs, names, top_fd in os.fwalk(tree, follow_symlinks=False):
        for name in dirs + names:
            info = os.lstat(name, dir_fd=top_fd)
            kind = _SPECIAL.get(stat.S_IFMT(info.st_mode))
            if kind is not None:
                where = os.path.relpath(os.path.join(top, name), tree)
                raise FailedPrecondition(f"the build left {kind} at /opt/runtime/{where}")
            _fix(name, top_fd, info, owner)
            files += 1
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                size += info.st_blocks * 512
                if size > max_bytes:
                    raise ResourceExhausted(
                        f"the built runtime is over runtime.maxSize ({max_bytes:,} bytes)"
                    )
    return VerifiedTree(size + root.st_blocks * 512, files, read_packages(tree))


def _fix(name: str, dir_fd: int | None, info: os.stat_result, owner: tuple[int, int]) -> None:
    """Owner to `owner` (the link itself for a symlink), setuid/setgid cleared."""
    if (info.st_uid, info.st_gid) != owner:
        os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        return  # a symlink's own mode means nothing
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_ISUID | stat.S_ISGID) or (info.st_uid, info.st_gid) != owner:
        # chown(2) may have dropped the bits already; chmod either way restores the rest
        os.chmod(name, mode & ~(stat.S_ISUID | stat.S_ISGID), dir_fd=dir_fd, follow_symlinks=False)


def read_packages(tree: Path) -> tuple[str, ...]:
    """The lines of the tree's .packages file when it is a small regular file."""
    try:
        fd = os.open(tree / PACKAGES_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ()
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ()
        data = file.read(MAX_PACKAGES_BYTES)
    lines = data.decode("utf-8", "replace").splitlines()
    return tuple(line.strip() for line in lines if line.strip())[:10000]


def tree_usage(tree: Path) -> int:
    """Disk usage of `tree`, hard links once, symlinks not followed."""
    seen: set[tuple[int, int]] = set()
    size = os.lstat(tree).st_blocks * 512
    for _top, dirs, names, top_fd in os.fwalk(tree, follow_symlinks=False):
        for name in dirs + names:
            info = os.lstat(name, dir_fd=top_fd)
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                size += info.st_blocks * 512
    return size
