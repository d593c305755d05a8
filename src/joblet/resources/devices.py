"""The block devices backing paths, as the "MAJ:MIN" strings IO limits take."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def device_number(path: Path) -> str:
    st_dev = os.stat(path).st_dev
    return f"{os.major(st_dev)}:{os.minor(st_dev)}"


def whole_disk(dev: str, sysfs: Path = Path("/sys")) -> str | None:
    """The disk that `dev` is or is a partition of; None when `dev` is no block
    device (tmpfs, overlayfs and other anonymous devices have major 0).

    blk-throttle matches the device number of the queue the bio is issued to,
    which is the whole disk's for a partition, so partitions map to their disk.
    """
    node = sysfs / "dev" / "block" / dev
    if not node.exists():
        return None
    if (node / "partition").exists():
        disk = (node.resolve().parent / "dev").read_text().strip()
        return disk or None
    return dev


def block_devices_for(*paths: Path, sysfs: Path = Path("/sys")) -> tuple[str, ...]:
    """Distinct whole-disk "MAJ:MIN" of the filesystems holding `paths`, in order."""
    return _unique(disk for p in paths if (disk := whole_disk(device_number(p), sysfs)))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
