"""The jobs' directory as the host sees it: nosuid and nodev.

Inside a job `/work` is already nosuid,nodev, but the same files sit on the
host's disk under `ROOT/jobs`, where a setuid-root binary or a device node a
job made would work for anyone who reached it. The daemon binds `ROOT/jobs`
onto itself with MS_NOSUID|MS_NODEV in the host's mount namespace for as long
as it runs, so such a file is inert on the host too (the directories' 0700
modes keep other users out in the first place).

A marker under `run/` records that the bind is ours, so a clean stop or
`joblet teardown` removes it and nothing else (a disk the operator mounted
there stays).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re

from joblet.config.model import RootLayout
from joblet.isolation import libc

MARKER = "jobs-mount"
_OCTAL = re.compile(r"\\([0-7]{3})")


def mount_options(mountinfo: str, point: str) -> frozenset[str] | None:
    """The per-mount options of the topmost mount at `point` in a
    /proc/<pid>/mountinfo text (proc(5)), or None when nothing is mounted there."""
    found: frozenset[str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 5 and _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[4]) == point:
            found = frozenset(fields[5].split(","))  # later lines are mounted on top
    return found


def is_protected(options: frozenset[str] | None) -> bool:
    return options is not None and {"nosuid", "nodev"} <= options


def _options_at(point: str, procfs: str) -> frozenset[str] | None:
    with open(f"{procfs}/self/mountinfo") as f:
        return mount_options(f.read(), point)


def protect_jobs_dir(layout: RootLayout, procfs: str = "/proc") -> bool:
    """Make `layout.jobs` nosuid,nodev on the host; whether a mount was added
    (False when it already is, after a crash or by the operator's choice)."""
    point = os.path.realpath(layout.jobs)
    if is_protected(_options_at(point, procfs)):
        return False
    libc.mount(point, point, None, libc.MS_BIND)
    try:
        flags = libc.MS_REMOUNT | libc.MS_BIND | libc.MS_NOSUID | libc.MS_NODEV
        libc.mount(None, point, None, flags)
        # Private: jobs' own mounts never travel back here, nor ours to peers.
        libc.mount(None, point, None, libc.MS_PRIVATE)
    except OSError:
        libc.umount2(point, libc.MNT_DETACH)
        raise
    (layout.run / MARKER).write_text(point + "\n")
    return True


def release_jobs_dir(layout: RootLayout, procfs: str = "/proc") -> bool:
    """Remove the bind `protect_jobs_dir` made (the marker says so); whether one went."""
    marker = layout.run / MARKER
    try:
        point = marker.read_text().strip()
    except FileNotFoundError:
        return False
    removed = False
    if point and is_protected(_options_at(point, procfs)):
        try:
            libc.umount2(point, libc.MNT_DETACH)
            removed = True
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a mount point any more
                raise
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    return removed
