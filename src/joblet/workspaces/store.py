"""Where jobs' workspaces live, and what caps their size.

With `joblet.maxWorkspaceSize` set, every workspace is a btrfs subvolume with
a qgroup limit, in one file system the daemon keeps in a sparse image under
its root (`ROOT/workspaces.img`, mounted nosuid,nodev at `ROOT/workspaces`).
A job that writes past its limit gets EDQUOT and the host disk keeps the
rest; the daemon's own writes (uploads) count too, so they cannot overshoot.

Why this design: a per-job file system (an ext4 image on a loop device, as
volumes use) costs ~20 ms of mount at every start, and a mount made after the
launcher cloned its spare inits is not visible in them; ext4 and XFS project
quotas need kernel options many kernels lack (this project's own hosts among
them). One mount made at daemon start is seen by every init cloned later, and
a start costs two ioctls. Removal is one ioctl too, whatever the job left.

The image is as large as the disk it sits on and sparse: the limit that
matters is the job's. If the host disk fills up, writes into the image fail
(btrfs may turn read-only); the daemon refuses new jobs well before that
(workspace.check_room).

Where btrfs is not available (no kernel support, no mkfs.btrfs), the daemon
says so at start and workspaces are plain directories under the job's
directory, as with `maxWorkspaceSize: 0`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from joblet.config.model import RootLayout
from joblet.isolation import libc
from joblet.jobs.tree_removal import RemovalFailure, remove_tree
from joblet.volumes import loop
from joblet.workspaces import btrfs

log = logging.getLogger(__name__)

MOUNT_FLAGS = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOATIME
# discard: space freed in the image goes back to the host disk.
MOUNT_OPTIONS = ("discard=async", "discard")
MKFS_TIMEOUT_S = 60.0
MIN_IMAGE_BYTES = 1 << 30  # mkfs.btrfs's floor is ~110 MiB; a smaller disk gets no store
_OCTAL = re.compile(r"\\([0-7]{3})")


class StoreUnavailable(OSError):
    """A quota store cannot be set up on this host; why is the message."""


@dataclass(frozen=True)
class WorkspaceStore:
    """Creates, finds and removes jobs' workspaces.

    `root` is None for plain directories (ROOT/jobs/<id>/work, no size limit).
    """

    layout: RootLayout
    quota_bytes: int = 0
    root: Path | None = None

    def path(self, job_id: str) -> Path:
        """The workspace's host directory. A job accepted before the store
        existed (a queued job across a restart) keeps its plain directory."""
        if self.root is not None:
            candidate = self.root / job_id
            if candidate.is_dir():
                return candidate
        return self.layout.job_dir(job_id) / "work"

    def create(self, job_id: str) -> Path:
        """An empty workspace for the job (0700; the caller sets its owner)."""
        if self.root is None:
            path = self.layout.job_dir(job_id) / "work"
            path.mkdir(mode=0o700)
            return path
        btrfs.create_subvolume(str(self.root), job_id)
        path = self.root / job_id
        try:
            btrfs.limit_referenced(str(path), self.quota_bytes)
            os.chmod(path, 0o700)
        except BaseException:
            btrfs.destroy_subvolume(str(self.root), job_id)
            raise
        return path

    def remove(self, job_id: str) -> list[RemovalFailure]:
        """Remove the job's workspace, wherever it is; what could not go."""
        if self.root is None:
            return []  # inside the job's directory, which goes with it
        path = self.root / job_id
        if btrfs.is_subvolume(str(path)):
            try:
                btrfs.destroy_subvolume(str(self.root), job_id)
                return []
            except FileNotFoundError:
                return []
            except OSError as exc:
                log.warning("workspace of %s: subvolume removal failed (%s)", job_id, exc)
        return remove_tree(path) if path.exists() else []


def plain_store(layout: RootLayout) -> WorkspaceStore:
    return WorkspaceStore(layout)


def mounted_fstype(mountinfo: str, point: str) -> str | None:
    """The file system type of the topmost mount at `point` in a
    /proc/<pid>/mountinfo text (proc(5)), or None when nothing is mounted there."""
    found: str | None = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if sep and len(fields) > 4 and _unescape(fields[4]) == point:
            found = right.split()[0] if right.split() else ""
    return found


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def _fstype_at(point: str, procfs: str = "/proc") -> str | None:
    with open(f"{procfs}/self/mountinfo") as f:
        return mounted_fstype(f.read(), point)


def image_size(layout: RootLayout) -> int:
    """As large as the disk under the root (sparse: only what is used is spent)."""
    stat = os.statvfs(layout.root)
    return stat.f_blocks * stat.f_frsize


def open_quota_store(
    layout: RootLayout, quota_bytes: int, mkfs: str = "mkfs.btrfs"
) -> WorkspaceStore:
    """Mount the workspaces' file system (made on first use) and return its
    store. Already mounted (a daemon that crashed): used as it is.
    Raises StoreUnavailable with the reason when it cannot be had."""
    point = layout.workspaces
    point.mkdir(mode=0o700, exist_ok=True)
    os.chmod(point, 0o700)
    real = os.path.realpath(point)
    fstype = _fstype_at(real)
    if fstype is None:
        image = layout.workspace_image
        fresh = not image.exists()
        if fresh:
            _make_image(str(image), image_size(layout), mkfs)
        try:
            _mount(str(image), real)
            if fresh:
                btrfs.enable_quota(real)
        except BaseException:
            with contextlib.suppress(OSError):
                libc.umount2(real, libc.MNT_DETACH)
            if fresh:
                image.unlink(missing_ok=True)
            raise
        os.chmod(real, 0o700)
        (layout.run / MARKER).write_text(real + "\n")
    elif fstype != "btrfs":
        raise StoreUnavailable(errno.EEXIST, f"{real} is a {fstype} mount, not the workspaces'")
    return WorkspaceStore(layout, quota_bytes, Path(real))


MARKER = "workspaces-mount"


def close_quota_store(layout: RootLayout) -> bool:
    """Unmount what open_quota_store mounted (its marker says so); whether it
    was mounted. The loop device goes with the mount (autoclear)."""
    marker = layout.run / MARKER
    try:
        point = marker.read_text().strip()
    except FileNotFoundError:
        return False
    removed = False
    if point and _fstype_at(point) == "btrfs":
        try:
            libc.umount2(point, libc.MNT_DETACH)
            removed = True
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    return removed


def _make_image(image: str, size: int, mkfs: str) -> None:
    if size < MIN_IMAGE_BYTES:
        raise StoreUnavailable(
            errno.ENOSPC, f"the disk under the root is under {MIN_IMAGE_BYTES} bytes"
        )
    if shutil.which(mkfs) is None:
        raise StoreUnavailable(errno.ENOENT, f"{mkfs} not found (Debian: btrfs-progs)")
    fd = os.open(image, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    # Single copies of metadata: the workspaces are scratch space, and DUP
    # would write every metadata block twice. -K: no discard of a new sparse file.
    argv = [mkfs, "-q", "-f", "-K", "-m", "single", "-d", "single", "-L", "joblet-work", image]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=MKFS_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        os.unlink(image)
        raise StoreUnavailable(errno.EIO, f"{mkfs} failed: {exc}") from exc
    if done.returncode != 0:
        os.unlink(image)
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise StoreUnavailable(errno.EIO, f"{mkfs} failed (exit {done.returncode}): {detail[0]}")


def _mount(image: str, point: str) -> None:
    with loop.attach(image) as device:
        for options in MOUNT_OPTIONS:
            try:
                libc.mount(device.path, point, "btrfs", MOUNT_FLAGS, options)
                break
            except OSError as exc:
                if exc.errno == errno.ENODEV:
                    raise StoreUnavailable(errno.ENODEV, "the kernel has no btrfs") from exc
                if exc.errno != errno.EINVAL or options == MOUNT_OPTIONS[-1]:
                    raise StoreUnavailable(
                        exc.errno or errno.EIO, f"cannot mount {image}: {exc.strerror}"
                    ) from exc
    # Private: jobs' own mounts never travel back here, nor ours to peers.
    libc.mount(None, point, None, libc.MS_PRIVATE)
