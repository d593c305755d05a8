"""Building one volume on disk, all or nothing (runs in a worker thread).

A filesystem volume is only created when something enforces its size: if the
image, mkfs, the loop device or the mount fails, CreateVolume fails with the
reason and leaves no directory behind, never an unlimited directory.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

from joblet.errors import FailedPrecondition, JobletError, ResourceExhausted
from joblet.volumes import disk
from joblet.volumes.model import VolumeInfo, VolumeRecord, VolumeType
from joblet.volumes.store import VolumePaths, VolumeStore

log = logging.getLogger(__name__)

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class SetupOptions:
    """The host tools and devices a volume is built with (tests point them elsewhere)."""

    mkfs: str = "mkfs.ext4"
    loop_control: str = "/dev/loop-control"
    sys_block: str = "/sys/block"
    owner: tuple[int, int] | None = None  # uid, gid of a new volume's root (jobs' user)


def translate(prefix: str, exc: OSError) -> JobletError:
    """An OS failure as the error the client sees, with the kernel's reason."""
    reason = exc.strerror or str(exc)
    if exc.errno in _NO_SPACE:
        return ResourceExhausted(f"{prefix}: {reason} (not enough space on the node)")
    return FailedPrecondition(f"{prefix}: {reason}")


def mount_volume(paths: VolumePaths, record: VolumeRecord, options: SetupOptions) -> str:
    """Mount a volume at its mount point; returns the loop device's MAJ:MIN ('' for memory)."""
    mnt = str(paths.mnt)
    if record.type is VolumeType.MEMORY:
        disk.mount_tmpfs(mnt, record.size_bytes)
        return ""
    disk.mount_image(str(paths.image), mnt, options.loop_control)
    return disk.device_number(mnt)


def build_volume(store: VolumeStore, record: VolumeRecord, options: SetupOptions) -> VolumeInfo:
    """Create, format and mount; the record is written last (the commit point)."""
    try:
        paths = store.make_dirs(record.name)
    except FileExistsError as exc:
        raise FailedPrecondition(
            f"cannot create volume {record.name!r}: {store.paths(record.name).dir}"
            " exists without a valid record (see the daemon log at start)"
        ) from exc
    try:
        if record.type is VolumeType.FILESYSTEM:
            disk.make_image(str(paths.image), record.size_bytes, options.mkfs)
        device = mount_volume(paths, record, options)
        if options.owner is not None:
            disk.set_owner(str(paths.mnt), *options.owner)
        store.write(record)
    except BaseException as exc:
        _undo(store, paths, record.name)
        if isinstance(exc, OSError):
            raise translate(f"cannot create volume {record.name!r}", exc) from exc
        raise
    return VolumeInfo(record, str(paths.mnt), device)


def _undo(store: VolumeStore, paths: VolumePaths, name: str) -> None:
    try:
        if disk.is_mounted(str(paths.mnt)):
            disk.unmount(str(paths.mnt))
        store.remove(name)
    except OSError:
        log.exception("could not undo the half-made volume %s at %s", name, paths.dir)
