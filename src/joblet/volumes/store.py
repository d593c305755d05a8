"""The node-local volume state: one directory per volume under ROOT/volumes.

    ROOT/volumes/NAME/volume.json   the record (written last, atomically:
                                    a directory without it is an unfinished
                                    create and is removed at start)
    ROOT/volumes/NAME/image         the ext4 image (filesystem volumes)
    ROOT/volumes/NAME/mnt           the mount point, the source of job binds

Removal never walks a tree (no rmtree): it unlinks the files it knows and
rmdirs the rest, so a directory that is still mounted fails with EBUSY
instead of losing the volume's data.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from joblet.volumes.model import VolumeRecord, check_name

RECORD = "volume.json"
IMAGE = "image"
MOUNT_DIR = "mnt"
_TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class VolumePaths:
    dir: Path

    @property
    def record(self) -> Path:
        return self.dir / RECORD

    @property
    def image(self) -> Path:
        return self.dir / IMAGE

    @property
    def mnt(self) -> Path:
        return self.dir / MOUNT_DIR


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def paths(self, name: str) -> VolumePaths:
        return VolumePaths(self.root / check_name(name))

    def make_dirs(self, name: str) -> VolumePaths:
        """Create NAME/ and NAME/mnt; FileExistsError when NAME/ exists."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths = self.paths(name)
        paths.dir.mkdir(mode=0o700)
        paths.mnt.mkdir(mode=0o755)
        return paths

    def write(self, record: VolumeRecord) -> None:
        """Atomically: a reader or a crash sees the old record or the new one."""
        path = self.paths(record.name).record
        tmp = path.with_name(path.name + _TMP_SUFFIX)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, record.to_json().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    def load(self) -> tuple[list[VolumeRecord], list[str], list[str]]:
        """(records, unfinished directory names, unreadable records as messages)."""
        records: list[VolumeRecord] = []
        unfinished: list[str] = []
        errors: list[str] = []
        if not self.root.is_dir():
            return records, unfinished, errors
        for entry in sorted(self.root.iterdir()):
            if not entry.is_dir() or entry.is_symlink():
                continue
            try:
                text = (entry / RECORD).read_text()
            except FileNotFoundError:
                unfinished.append(entry.name)
                continue
            try:
                record = VolumeRecord.from_json(text)
            except (ValueError, KeyError) as exc:
                errors.append(f"{entry / RECORD}: {exc}")
                continue
            if record.name == entry.name:
                records.append(record)
            else:
                errors.append(f"{entry / RECORD}: names volume {record.name!r}")
        return records, unfinished, errors

    def remove(self, name: str) -> None:
        """Delete a volume's files; the mount point must be unmounted first."""
        paths = self.paths(name)
        for path in (paths.record, paths.record.with_name(RECORD + _TMP_SUFFIX), paths.image):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        with contextlib.suppress(FileNotFoundError):
            paths.mnt.rmdir()
        with contextlib.suppress(FileNotFoundError):
            paths.dir.rmdir()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
