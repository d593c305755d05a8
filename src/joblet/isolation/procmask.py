"""The job's /proc entries made read-only or masked, as its init runs them.

Which kernel entries exist depends on the kernel and its loaded modules
(asound, mdstat, scsi...). Rather than trying a bind of every name the
plan knows and failing on the absent ones (some 40 failing calls per job),
the init lists its fresh /proc once (its pid namespace is new, so the
listing is a few pids and the kernel's entries) and binds what is there.

The listing is the init's own, never a cached one: an entry that appears
later (a module loaded after the daemon started) is found by the next
job's listing. A spare init lists /proc when it is made and again when it
gets its job (see rootfs.plan_parts), so an entry that appeared while it
waited is bound too; `_bound` keeps what this process bound already.
"""

from __future__ import annotations

import errno
import os

from joblet.isolation import libc

READONLY_ATTRS = (
    libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOEXEC
)
# /dev/null binds: nodev would make them unreadable (EACCES), not empty.
MASK_ATTRS = libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NOEXEC
_BIND = libc.MS_BIND | libc.MS_REC

# Names this process has bound (an init is one process; the launcher never
# runs this, so its copy stays empty for every init it clones).
_bound: set[bytes] = set()


def bind_entries(proc: bytes, readonly: tuple[bytes, ...], masked: tuple[bytes, ...]) -> int:
    """Bind each present entry of `readonly` onto itself read-only and each of
    `masked` to /dev/null, skipping those bound before; 0 or the errno."""
    present = set(os.listdir(proc))
    first = not _bound
    new: list[bytes] = []
    for name in readonly:
        if name in present and name not in _bound:
            path = proc + b"/" + name
            err = libc.mount_raw(path, path, None, _BIND, None)
            if err == errno.ENOENT:  # gone since the listing (a module unloaded)
                continue
            if err:
                return err
            _bound.add(name)
            new.append(path)
    if first and new:
        # Only these binds are below the fresh /proc yet: one recursive call
        # protects them all; /proc itself stays writable (/proc/self/...).
        err = libc.mount_setattr_raw(proc, _ALL_READONLY)
        err = err or libc.mount_setattr_raw(proc, _PROC_WRITABLE)
    else:
        err = next((e for path in new if (e := libc.mount_setattr_raw(path, _READONLY))), 0)
    return err or _mask(proc, masked, present)


def _mask(proc: bytes, masked: tuple[bytes, ...], present: set[bytes]) -> int:
    for name in masked:
        if name in present and name not in _bound:
            path = proc + b"/" + name
            err = libc.mount_raw(b"/dev/null", path, None, libc.MS_BIND, None)
            if err == errno.ENOENT:
                continue
            if err := err or libc.mount_setattr_raw(path, _MASK):
                return err
            _bound.add(name)
    return 0


_ALL_READONLY = libc.MountAttrs(READONLY_ATTRS)
_PROC_WRITABLE = libc.MountAttrs(0, recursive=False, attr_clr=libc.MOUNT_ATTR_RDONLY)
_READONLY = libc.MountAttrs(READONLY_ATTRS)
_MASK = libc.MountAttrs(MASK_ATTRS)
