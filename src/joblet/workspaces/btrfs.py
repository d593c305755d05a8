"""The few btrfs ioctls a workspace store needs (linux/btrfs.h): a subvolume
per job, a limit on what it references, and its removal.

Through ioctls rather than btrfs-progs: a job start pays for two system calls,
not two processes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

MAGIC = 0x94
FIRST_FREE_OBJECTID = 256  # the root directory of every subvolume has this inode number
PATH_NAME_MAX = 4087
QGROUP_LIMIT_MAX_RFER = 1  # BTRFS_QGROUP_LIMIT_MAX_RFER
QUOTA_CTL_ENABLE = 1
BTRFS_SUPER_MAGIC = 0x9123683E


def _ioc(direction: int, number: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (MAGIC << 8) | number


_WRITE, _READ = 1, 2
VOL_ARGS_SIZE = 4096  # struct btrfs_ioctl_vol_args: s64 fd; char name[4088]
SNAP_CREATE = _ioc(_WRITE, 1, VOL_ARGS_SIZE)
SUBVOL_CREATE = _ioc(_WRITE, 14, VOL_ARGS_SIZE)
SNAP_DESTROY = _ioc(_WRITE, 15, VOL_ARGS_SIZE)
SNAP_CREATE_V2 = _ioc(_WRITE, 23, VOL_ARGS_SIZE)  # struct btrfs_ioctl_vol_args_v2 is 4096 too
SUBVOL_CREATE_V2 = _ioc(_WRITE, 24, VOL_ARGS_SIZE)
# struct btrfs_ioctl_qgroup_limit_args: u64 qgroupid; struct btrfs_qgroup_limit
# (u64 flags, max_rfer, max_excl, rsv_rfer, rsv_excl)
_LIMIT_ARGS = struct.Struct("=6Q")
QGROUP_LIMIT = _ioc(_READ, 43, _LIMIT_ARGS.size)
_QUOTA_CTL_ARGS = struct.Struct("=2Q")  # u64 cmd; u64 status
QUOTA_CTL = _ioc(_READ | _WRITE, 40, _QUOTA_CTL_ARGS.size)

# What a job must not do on a btrfs workspace: a subvolume or snapshot it
# made would be a qgroup of its own, outside its workspace's limit.
SUBVOLUME_MAKERS = (SNAP_CREATE, SUBVOL_CREATE, SNAP_CREATE_V2, SUBVOL_CREATE_V2)


def vol_args(name: str) -> bytes:
    raw = os.fsencode(name)
    if not raw or b"/" in raw or b"\0" in raw or raw in (b".", b"..") or len(raw) > PATH_NAME_MAX:
        raise ValueError(f"not a subvolume name: {name!r}")
    return struct.pack("=q", 0) + raw.ljust(VOL_ARGS_SIZE - 8, b"\0")


def limit_args(max_referenced: int) -> bytes:
    """qgroupid 0: the subvolume of the file the ioctl is called on."""
    return _LIMIT_ARGS.pack(0, QGROUP_LIMIT_MAX_RFER, max_referenced, 0, 0, 0)


def _on_dir(path: str, request: int, arg: bytes) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        # A mutable buffer: Python copies an immutable one into 1024 bytes at most.
        fcntl.ioctl(fd, request, bytearray(arg), True)
    finally:
        os.close(fd)


def create_subvolume(parent: str, name: str) -> None:
    _on_dir(parent, SUBVOL_CREATE, vol_args(name))


def destroy_subvolume(parent: str, name: str) -> None:
    """Remove a subvolume and all it holds at once (the space is reclaimed in
    the background); FileNotFoundError when there is none of that name."""
    try:
        _on_dir(parent, SNAP_DESTROY, vol_args(name))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(errno.ENOENT, "no such subvolume", name) from None
        raise


def limit_referenced(path: str, max_bytes: int) -> None:
    """Cap what the subvolume at `path` may reference (writes beyond: EDQUOT)."""
    _on_dir(path, QGROUP_LIMIT, limit_args(max_bytes))


def enable_quota(mount_point: str) -> None:
    _on_dir(mount_point, QUOTA_CTL, _QUOTA_CTL_ARGS.pack(QUOTA_CTL_ENABLE, 0))


def is_subvolume(path: str) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return st.st_ino == FIRST_FREE_OBJECTID and os.path.isdir(path)
