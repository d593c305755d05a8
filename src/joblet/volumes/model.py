"""Volumes as plain data: names, sizes, job entries and the state record.

Pure functions only; the I/O lives in `disk`, `loop`, `store` and `manager`.

Sizes take the units of `joblet.config.units.parse_size_bytes`: a bare number
is bytes, `KB`/`MB`/`GB`/`TB` are powers of 1000 and `KiB`/`MiB`/`GiB`/`TiB`
powers of 1024 (`500MB`, `1GB`, `1GiB`).
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass

from joblet.config.units import parse_size_bytes
from joblet.errors import InvalidArgument

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_SIZE_BYTES = 1024 * 1024
READ_ONLY_SUFFIX = ":ro"
JOB_MOUNT_DIR = "/volumes"


class VolumeType(enum.StrEnum):
    FILESYSTEM = "filesystem"  # ext4 in a preallocated image on a loop device
    MEMORY = "memory"  # tmpfs: survives a daemon restart, empty after a reboot


@dataclass(frozen=True)
class VolumeRecord:
    """What the node keeps about one volume (ROOT/volumes/NAME/volume.json)."""

    name: str
    size: str  # as the client asked for it ("1GB")
    size_bytes: int
    type: VolumeType
    created: str  # RFC 3339, UTC
    image: str = ""  # host path of the image file (filesystem volumes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> VolumeRecord:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("volume record is not a JSON object")
        record = cls(
            name=str(raw["name"]),
            size=str(raw["size"]),
            size_bytes=int(raw["size_bytes"]),
            type=VolumeType(raw["type"]),
            created=str(raw["created"]),
            image=str(raw.get("image", "")),
        )
        try:
            check_name(record.name)
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from exc
        return record


@dataclass(frozen=True)
class VolumeInfo:
    record: VolumeRecord
    path: str  # host mount point: the bind source of the jobs using it
    device: str = ""  # MAJ:MIN of the loop device (filesystem volumes)
    error: str = ""  # non-empty: unavailable (a broken image), kept for the operator

    @property
    def name(self) -> str:
        return self.record.name


def check_name(name: str) -> str:
    """A volume name: 1-64 of [A-Za-z0-9_.-], starting alphanumeric, no `..`.
    No `/` can pass, so a name never leaves ROOT/volumes or /volumes."""
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidArgument(
            f"invalid volume name {name!r}: use 1-64 letters, digits, '_', '.', '-',"
            " starting with a letter or digit, without '..'"
        )
    return name


def parse_type(text: str) -> VolumeType:
    """'' means filesystem."""
    try:
        return VolumeType(text.strip().lower() or VolumeType.FILESYSTEM)
    except ValueError:
        raise InvalidArgument(f"invalid volume type {text!r}: use filesystem or memory") from None


def parse_size(text: str, max_bytes: int) -> int:
    """'500MB', '1GB', '1GiB' -> bytes, between MIN_SIZE_BYTES and `max_bytes`."""
    if not text.strip():
        raise InvalidArgument("volume size is required (e.g. 500MB, 1GB, 1GiB)")
    try:
        size = parse_size_bytes(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid volume size {text!r}: use e.g. 500MB, 1GB, 1GiB") from exc
    if size < MIN_SIZE_BYTES:
        raise InvalidArgument(f"volume size {text!r} is below the minimum of 1MiB")
    if size > max_bytes:
        raise InvalidArgument(
            f"volume size {text!r} ({size} bytes) is above this node's maximum"
            f" of {max_bytes} bytes (volumes.maxSize)"
        )
    return size


def check_memory_size(text: str, size: int, cap: int) -> None:
    """Refuse a memory (tmpfs) volume above `cap` bytes: its pages are RAM
    that no job's memory limit counts."""
    if size > cap:
        raise InvalidArgument(
            f"memory volume size {text!r} ({size} bytes) is above this node's maximum"
            f" of {cap} bytes for memory volumes (volumes.maxMemorySize, half the"
            " host's RAM by default)"
        )


def parse_entry(entry: str) -> tuple[str, bool]:
    """A RunJobRequest.volumes entry, `NAME` or `NAME:ro` -> (name, read_only)."""
    read_only = entry.endswith(READ_ONLY_SUFFIX)
    name = entry[: -len(READ_ONLY_SUFFIX)] if read_only else entry
    return check_name(name), read_only


def job_mount_path(name: str) -> str:
    """Where a job sees the volume."""
    return f"{JOB_MOUNT_DIR}/{check_name(name)}"
