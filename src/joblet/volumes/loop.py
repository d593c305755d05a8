"""Loop devices through their ioctls (loop(4)): no losetup process per volume.

`attach` asks /dev/loop-control for a free device (LOOP_CTL_GET_FREE, which
creates one past the pre-made ones) and binds the image with LOOP_CONFIGURE
(Linux 5.8+) in one call, with direct I/O (no second page cache over the
image) and autoclear: the device detaches itself when its last user, the
mount, goes away, so an unmount is the whole teardown.

The sysfs reads are split into a pure parser so leftovers can be found in a
fake tree.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time
from collections.abc import Mapping
from pathlib import Path

LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A
LOOP_CLR_FD = 0x4C01
LO_FLAGS_AUTOCLEAR = 4
LO_FLAGS_DIRECT_IO = 16
LO_NAME_SIZE = 64
# struct loop_config { u32 fd; u32 block_size; struct loop_info64 info; u64 reserved[8]; }
# struct loop_info64 { u64 device, inode, rdevice, offset, sizelimit;
#   u32 number, encrypt_type, encrypt_key_size, flags;
#   u8 file_name[64], crypt_name[64], encrypt_key[32]; u64 init[2]; }
_LOOP_CONFIG = struct.Struct("=II5Q4I64s64s32s2Q8Q")
ATTACH_TRIES = 8  # another process may take the free device between the two ioctls


class LoopError(OSError):
    """No loop device could be set up for an image."""


def config_bytes(backing_fd: int, flags: int, file_name: str) -> bytes:
    name = os.fsencode(file_name)[: LO_NAME_SIZE - 1]
    zeros = (0,) * 8
    return _LOOP_CONFIG.pack(
        backing_fd, 0, 0, 0, 0, 0, 0, 0, 0, 0, flags, name, b"", b"", 0, 0, *zeros
    )


class LoopDevice:
    """A bound loop device held open. With autoclear, the last close of an
    unmounted device detaches it: keep this open until the mount holds it."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd = fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> LoopDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def attach(image: str, control: str = "/dev/loop-control", dev_dir: str = "/dev") -> LoopDevice:
    """Bind `image` to a free loop device, returned open (see LoopDevice)."""
    flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO
    try:
        backing = os.open(image, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise LoopError(exc.errno, f"cannot open volume image {image}: {exc.strerror}") from exc
    try:
        for _ in range(ATTACH_TRIES):
            device = f"{dev_dir}/loop{_get_free(control)}"
            fd = _configure(device, config_bytes(backing, flags, image))
            if fd >= 0:
                return LoopDevice(device, fd)
        raise LoopError(errno.EBUSY, f"no free loop device after {ATTACH_TRIES} tries")
    finally:
        os.close(backing)


def _get_free(control: str) -> int:
    try:
        fd = os.open(control, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise LoopError(exc.errno, f"cannot open {control}: {exc.strerror}") from exc
    try:
        return fcntl.ioctl(fd, LOOP_CTL_GET_FREE)
    except OSError as exc:
        raise LoopError(exc.errno, f"no free loop device: {exc.strerror}") from exc
    finally:
        os.close(fd)


def _configure(device: str, config: bytes) -> int:
    """The open device, or -1 when another process bound it first (EBUSY)."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise LoopError(exc.errno, f"cannot open {device}: {exc.strerror}") from exc
    try:
        fcntl.ioctl(fd, LOOP_CONFIGURE, config)
        return fd
    except OSError as exc:
        os.close(fd)
        if exc.errno == errno.EBUSY:
            return -1
        raise LoopError(exc.errno, f"cannot configure {device}: {exc.strerror}") from exc


def detach(device: str) -> None:
    """Unbind a device (when mounted, the kernel defers it to the unmount)."""
    fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, LOOP_CLR_FD)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # not bound: nothing to do
            raise
    finally:
        os.close(fd)


def read_bindings(sys_block: str = "/sys/block") -> dict[str, str]:
    """Bound loop devices -> their backing file, as sysfs shows them."""
    found: dict[str, str] = {}
    for entry in Path(sys_block).glob("loop*/loop/backing_file"):
        try:
            found[entry.parent.parent.name] = entry.read_text().rstrip("\n")
        except OSError:
            continue  # detached between the glob and the read
    return found


def backing_path(text: str) -> str:
    """sysfs appends ' (deleted)' when the backing file was unlinked."""
    return text.removesuffix(" (deleted)")


def leftovers(bindings: Mapping[str, str], images_under: str, in_use: set[str]) -> list[str]:
    """Devices backed by an image under `images_under` and not in `in_use`
    (the devices our volume mounts sit on): stale bindings of a crashed run."""
    prefix = images_under.rstrip("/") + "/"
    return sorted(
        device
        for device, backing in bindings.items()
        if backing_path(backing).startswith(prefix) and device not in in_use
    )


def wait_unbound(images_under: str, timeout_s: float, sys_block: str = "/sys/block") -> list[str]:
    """Wait until no device is bound to an image under `images_under`; the
    devices still bound after `timeout_s`. The autoclear of an unmounted
    device can finish after umount2 returned (the kernel tears it down
    from a work queue), so an unmount alone does not mean it is gone."""
    deadline = time.monotonic() + timeout_s
    while True:
        bound = leftovers(read_bindings(sys_block), images_under, set())
        if not bound or time.monotonic() >= deadline:
            return bound
        time.sleep(0.02)
