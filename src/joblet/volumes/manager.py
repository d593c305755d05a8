"""VolumeManager: the node's volumes, their state files and mounts.

Decide, then do: the in-memory table is changed only on the event loop's
thread (no lock), and the slow parts (fallocate, mkfs, mount, unmount) run in
a worker thread while the name is marked busy, so a concurrent create,
remove or job start sees it and refuses instead of racing.

Who uses a volume is the job manager's knowledge, not ours: it hands in
`users_of(name)`, the ids of running, queued and scheduled jobs whose
RunJobRequest.volumes name it, and we only ask.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from joblet.config.host_memory import memory_volume_cap, read_mem_total
from joblet.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from joblet.volumes import disk, loop
from joblet.volumes.config import VolumesConfig
from joblet.volumes.model import (
    VolumeInfo,
    VolumeRecord,
    VolumeType,
    check_memory_size,
    check_name,
    parse_entry,
    parse_size,
    parse_type,
)
from joblet.volumes.setup import SetupOptions, build_volume, translate
from joblet.volumes.store import VolumeStore

log = logging.getLogger(__name__)

UsersOf = Callable[[str], Sequence[str]]
DETACH_WAIT_S = 5.0
VolumeMount = tuple[str, str, bool]  # (host path, name, read_only), as LaunchSpec takes it


def _no_users(name: str) -> Sequence[str]:
    return ()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class VolumeManager:
    def __init__(
        self,
        root: Path,
        config: VolumesConfig,
        users_of: UsersOf = _no_users,
        options: SetupOptions | None = None,
    ) -> None:
        self._store = VolumeStore(root)
        self._config = config
        self._users_of = users_of
        self._options = options or SetupOptions()
        self._volumes: dict[str, VolumeInfo] = {}
        self._busy: set[str] = set()  # being created or removed

    @property
    def root(self) -> Path:
        return self._store.root

    def set_users_of(self, users_of: UsersOf) -> None:
        """For a composition root that builds the job manager after us."""
        self._users_of = users_of

    def restore(self) -> list[str]:
        """At daemon start: load the records, remount what is not mounted, drop
        unfinished creates and stale loop devices. Returns the problems found
        (also logged); a broken volume stays listed as unavailable."""
        from joblet.volumes.restore import restore_volumes

        infos, problems = restore_volumes(self._store, self._options)
        self._volumes = {info.name: info for info in infos}
        return problems

    def release_devices(self) -> list[str]:
        """At a clean stop with no job left: unmount the filesystem volumes, so
        their loop devices detach (autoclear); the next start mounts them again
        (see restore). Memory volumes stay mounted: an unmount would empty them.
        Returns the problems (a volume whose unmount failed stays mounted)."""
        problems: list[str] = []
        for info in self._volumes.values():
            if info.record.type is not VolumeType.FILESYSTEM or info.error:
                continue
            try:
                disk.unmount(info.path)
            except OSError as exc:
                problems.append(f"volume {info.name} stays mounted: {exc.strerror or exc}")
        images = os.path.realpath(self.root)
        for device in loop.wait_unbound(images, DETACH_WAIT_S, self._options.sys_block):
            try:
                loop.detach(f"/dev/{device}")
            except OSError as exc:
                problems.append(f"loop device {device} stays bound: {exc.strerror or exc}")
        return problems

    async def create(self, name: str, size: str, type_text: str = "") -> VolumeInfo:
        record = self._new_record(name, size, type_text)
        self._reserve(record.name)
        try:
            info = await asyncio.to_thread(build_volume, self._store, record, self._options)
        except BaseException:
            self._busy.discard(record.name)
            raise
        self._volumes[record.name] = info
        self._busy.discard(record.name)
        log.info("volume %s created (%s, %s)", record.name, record.type, record.size)
        return info

    def _new_record(self, name: str, size: str, type_text: str) -> VolumeRecord:
        vtype = parse_type(type_text)
        size_bytes = parse_size(size, self._config.max_size_bytes)
        name = check_name(name)
        filesystem = vtype is VolumeType.FILESYSTEM
        if not filesystem:
            check_memory_size(size, size_bytes, self._memory_cap())
        image = str(self._store.paths(name).image) if filesystem else ""
        return VolumeRecord(name, size.strip(), size_bytes, vtype, _now(), image)

    def _memory_cap(self) -> int:
        if self._config.max_memory_bytes is not None:
            return self._config.max_memory_bytes
        return memory_volume_cap(read_mem_total())

    def _reserve(self, name: str) -> None:
        if name in self._volumes or name in self._busy:
            raise AlreadyExists(f"volume {name!r} already exists")
        count = len(self._volumes) + len(self._busy)
        if self._config.max_count and count >= self._config.max_count:
            raise ResourceExhausted(
                f"this node holds its maximum of {self._config.max_count} volumes"
                " (volumes.maxCount)"
            )
        self._busy.add(name)

    async def remove(self, name: str) -> None:
        info = self._get(name)
        users = list(self._users_of(info.name))
        if users:
            raise FailedPrecondition(
                f"volume {info.name!r} is in use by job(s) {', '.join(sorted(users))}"
            )
        self._busy.add(info.name)
        try:
            await asyncio.to_thread(_tear_down, self._store, info)
            del self._volumes[info.name]
        finally:
            self._busy.discard(info.name)
        log.info("volume %s removed", info.name)

    def list(self) -> list[tuple[VolumeInfo, int]]:
        """Every volume (unavailable ones too) with its number of live users."""
        return [
            (info, len(self._users_of(name)))
            for name, info in sorted(self._volumes.items())
            if name not in self._busy
        ]

    def get(self, name: str) -> VolumeInfo:
        return self._get(name)

    def _get(self, name: str) -> VolumeInfo:
        info = self._volumes.get(check_name(name))
        if info is None or name in self._busy:
            raise NotFound(f"volume {name!r} not found")
        return info

    def resolve_for_job(self, entries: Sequence[str]) -> tuple[VolumeMount, ...]:
        """RunJobRequest.volumes (`NAME`, `NAME:ro`) -> LaunchSpec.volume_mounts.
        NotFound for an unknown volume, FailedPrecondition for an unavailable one."""
        mounts: list[VolumeMount] = []
        seen: set[str] = set()
        for entry in entries:
            name, read_only = parse_entry(entry)
            if name in seen:
                raise InvalidArgument(f"volume {name!r} is given more than once")
            seen.add(name)
            info = self._get(name)
            if info.error:
                raise FailedPrecondition(f"volume {name!r} is unavailable: {info.error}")
            mounts.append((info.path, name, read_only))
        return tuple(mounts)

    def block_devices(self, names: Iterable[str]) -> tuple[str, ...]:
        """MAJ:MIN of the loop devices under the named volumes (memory ones have
        none), for the job's IO limits. Accepts names or `NAME:ro` entries."""
        found: list[str] = []
        for entry in names:
            info = self._volumes.get(parse_entry(entry)[0])
            if info is not None and info.device and info.device not in found:
                found.append(info.device)
        return tuple(found)


def entry_names(entries: Iterable[str]) -> frozenset[str]:
    """The volume names of RunJobRequest.volumes entries (for `users_of`)."""
    return frozenset(parse_entry(entry)[0] for entry in entries)


def _tear_down(store: VolumeStore, info: VolumeInfo) -> None:
    try:
        disk.unmount(str(store.paths(info.name).mnt))
        store.remove(info.name)
    except OSError as exc:
        raise translate(f"cannot remove volume {info.name!r}", exc) from exc


__all__ = ["UsersOf", "VolumeInfo", "VolumeManager", "entry_names"]
