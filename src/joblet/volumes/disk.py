"""The OS side of a volume: image, file system, mounts.

Every function takes the paths it works on; `VolumeManager` decides which.
Errors are OSError (with the reason in the message) for the manager to turn
into domain errors.
"""

from __future__ import annotations

import errno
import os
import subprocess

from joblet.isolation import libc
from joblet.volumes import ext4, loop

MOUNT_FLAGS = libc.MS_NOSUID | libc.MS_NODEV
# The image reads as zeros (fallocate), so the kernel's background zeroing of
# inode tables (ext4lazyinit) would only compete with the job's writes.
EXT4_OPTIONS = "noinit_itable"
MKFS_TIMEOUT_S = 60.0


def make_image(image: str, size: int, mkfs: str) -> None:
    """A preallocated image with ext4 that offers `size` bytes."""
    plan = ext4.plan_image(size)
    fd = os.open(image, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        # Preallocated, so the volume cannot hit ENOSPC of the host disk later.
        os.posix_fallocate(fd, 0, plan.image_bytes)
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot preallocate {plan.image_bytes} bytes: {exc.strerror}"
        ) from exc
    finally:
        os.close(fd)
    argv = ext4.mkfs_argv(mkfs, image, plan, os.path.basename(os.path.dirname(image)))
    try:
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=MKFS_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OSError(errno.EIO, f"mkfs failed: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise OSError(errno.EIO, f"mkfs failed (exit {done.returncode}): {detail[0]}")


def mount_image(image: str, mnt: str, loop_control: str) -> str:
    """Bind the image to a loop device and mount it; returns the device."""
    with loop.attach(image, loop_control) as device:
        try:
            libc.mount(device.path, mnt, "ext4", MOUNT_FLAGS, EXT4_OPTIONS)
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot mount {image} ({device.path}): {exc.strerror}"
            ) from exc
        return device.path


def mount_tmpfs(mnt: str, size: int) -> None:
    libc.mount("tmpfs", mnt, "tmpfs", MOUNT_FLAGS, f"size={size},mode=0755")


def unmount(mnt: str) -> None:
    """Unmount the host mount; a loop device under it detaches itself."""
    try:
        libc.umount2(mnt)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a mount point (already gone)
            raise


def is_mounted(mnt: str) -> bool:
    return os.path.ismount(mnt)


def device_number(mnt: str) -> str:
    """MAJ:MIN of the block device a mount sits on (for blkio limits)."""
    dev = os.stat(mnt).st_dev
    return f"{os.major(dev)}:{os.minor(dev)}"


def device_name(mnt: str) -> str:
    """The kernel name (loop3) of the device under a loop mount; '' for tmpfs."""
    dev = os.stat(mnt).st_dev
    link = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"
    try:
        return os.path.basename(os.readlink(link))
    except OSError:
        return ""


def set_owner(mnt: str, uid: int, gid: int) -> None:
    os.chown(mnt, uid, gid, follow_symlinks=False)
