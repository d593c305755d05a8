"""Bringing the node's volumes back at daemon start.

- A mounted volume (the daemon restarted, the host did not) is kept as is.
- An unmounted filesystem volume (after a reboot) is remounted from its image;
  an image that is missing or does not mount is reported and listed as
  unavailable, never recreated (that would lose data silently).
- An unmounted memory volume is mounted again, empty: tmpfs data does not
  survive a reboot.
- A directory without a record is a create that crashed: removed.
- A loop device bound to an image under our root that no mounted volume sits
  on is a leftover of a crash: detached. Other loop devices are not touched.
"""

from __future__ import annotations

import logging
import os

from joblet.volumes import disk, loop
from joblet.volumes.model import VolumeInfo, VolumeRecord, VolumeType
from joblet.volumes.setup import SetupOptions, mount_volume
from joblet.volumes.store import VolumeStore

log = logging.getLogger(__name__)


def restore_volumes(
    store: VolumeStore, options: SetupOptions
) -> tuple[list[VolumeInfo], list[str]]:
    records, unfinished, problems = store.load()
    for name in unfinished:
        problems += _drop_unfinished(store, name)
    infos = [_restore_one(store, record, options) for record in records]
    problems += [f"volume {i.name}: {i.error}" for i in infos if i.error]
    problems += _detach_leftovers(store, infos, options)
    for problem in problems:
        log.warning("volumes: %s", problem)
    return infos, problems


def _restore_one(store: VolumeStore, record: VolumeRecord, options: SetupOptions) -> VolumeInfo:
    paths = store.paths(record.name)
    mnt = str(paths.mnt)
    filesystem = record.type is VolumeType.FILESYSTEM
    try:
        if disk.is_mounted(mnt):
            return VolumeInfo(record, mnt, disk.device_number(mnt) if filesystem else "")
        if filesystem and not paths.image.is_file():
            return VolumeInfo(record, mnt, error=f"image {paths.image} is missing")
        device = mount_volume(paths, record, options)
    except OSError as exc:
        return VolumeInfo(record, mnt, error=f"cannot mount: {exc.strerror or exc}")
    if options.owner is not None and not filesystem:
        disk.set_owner(mnt, *options.owner)  # a fresh tmpfs after a reboot
    log.info("volume %s mounted again%s", record.name, "" if filesystem else " (empty)")
    return VolumeInfo(record, mnt, device)


def _drop_unfinished(store: VolumeStore, name: str) -> list[str]:
    paths = store.paths(name)
    try:
        if disk.is_mounted(str(paths.mnt)):
            disk.unmount(str(paths.mnt))
        store.remove(name)
    except OSError as exc:
        return [f"unfinished volume directory {paths.dir} not removed: {exc}"]
    log.info("removed the unfinished volume directory %s", paths.dir)
    return []


def _detach_leftovers(
    store: VolumeStore, infos: list[VolumeInfo], options: SetupOptions
) -> list[str]:
    in_use = {disk.device_name(i.path) for i in infos if i.device}
    bindings = loop.read_bindings(options.sys_block)
    problems: list[str] = []
    for device in loop.leftovers(bindings, os.path.realpath(store.root), in_use):
        try:
            loop.detach(f"/dev/{device}")
            log.info("detached leftover loop device %s (%s)", device, bindings[device])
        except OSError as exc:
            problems.append(f"leftover loop device {device} not detached: {exc}")
    return problems
