"""One job's history in one directory: segment files plus an index.

    DIR/seg-00000001.zst ...  finished segments (complete zstd frames)
    DIR/seg-0000000N.zst      the active one, if persist is writing
    DIR/index.json            finished segments' SegmentInfo, and `sealed`

The index is rewritten (atomically) when a segment is finished. A segment the
index lacks (persist died while writing it, or the index write failed) is
scanned and added when the history is next opened, so the index is only ever
an accelerator, never the source of truth.

A finished segment never changes, so one whose size differs from the index's
or that was modified after the index was written has been damaged (truncated,
overwritten): it is checked frame by frame when the history is opened, and if
bytes are damaged it is quarantined (salvage.py): what can be read is kept,
the original is moved aside. A segment the index lacks is quarantined when
its bytes are damaged; a last frame cut short there is the normal trace of a
crash while writing, not damage.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from joblet.persist.store.records import PackedBatch
from joblet.persist.store.salvage import quarantine_if_damaged
from joblet.persist.store.segment import (
    CompressedWrite,
    SegmentInfo,
    SegmentWriter,
    scan,
    scan_checked,
)

log = logging.getLogger(__name__)

INDEX = "index.json"
SEGMENT_PREFIX = "seg-"
SEGMENT_SUFFIX = ".zst"


@dataclass
class JobIndex:
    sealed: bool = False
    segments: list[SegmentInfo] = field(default_factory=list)


def segment_name(number: int) -> str:
    return f"{SEGMENT_PREFIX}{number:08d}{SEGMENT_SUFFIX}"


def segment_files(directory: Path) -> list[str]:
    names = (p.name for p in directory.iterdir())
    return sorted(n for n in names if n.startswith(SEGMENT_PREFIX) and n.endswith(SEGMENT_SUFFIX))


def load_index(directory: Path) -> JobIndex:
    """The index, completed from the segment files on disk, damaged segments
    quarantined (module doc)."""
    index_path = directory / INDEX
    index = _read_index(index_path)
    on_disk = segment_files(directory)
    known = {info.name for info in index.segments}
    written = _mtime(index_path)
    checked: list[SegmentInfo] = []
    repaired = False
    for info in index.segments:
        if info.name not in on_disk:
            continue
        if _changed_since(directory / info.name, info, written):
            repaired = True
            checked += _rescanned(directory / info.name)
        else:
            checked.append(info)
    for name in on_disk:
        if name not in known:
            log.info("indexing segment %s/%s (not in the index)", directory, name)
            found, damaged = scan_checked(directory / name)
            checked += _rescanned(directory / name) if damaged else [found]
    index.segments = sorted(checked, key=lambda info: info.name)
    if repaired:
        _save_quietly(directory, index)
    return index


def _rescanned(path: Path) -> list[SegmentInfo]:
    """A suspect segment, quarantined if damaged, as the index should now
    know it: [] when nothing of it could be read."""
    quarantine_if_damaged(path)
    return [scan(path)] if path.exists() else []


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _changed_since(path: Path, info: SegmentInfo, index_written: float | None) -> bool:
    """Whether a finished segment is not as the index recorded it."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if stat.st_size != info.stored_bytes:
        return True
    return index_written is not None and stat.st_mtime > index_written


def _save_quietly(directory: Path, index: JobIndex) -> None:
    try:
        save_index(directory, index)
    except OSError as exc:
        log.error("cannot write the index of %s: %s", directory, exc)


def _read_index(path: Path) -> JobIndex:
    try:
        raw = json.loads(path.read_text())
        return JobIndex(
            sealed=bool(raw["sealed"]),
            segments=[SegmentInfo.from_json(item) for item in raw["segments"]],
        )
    except FileNotFoundError:
        return JobIndex()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("index %s is unreadable (%s); rebuilding it from the segments", path, exc)
        return JobIndex()


def save_index(directory: Path, index: JobIndex) -> None:
    body = {"sealed": index.sealed, "segments": [info.to_json() for info in index.segments]}
    tmp = directory / (INDEX + ".tmp")
    tmp.write_text(json.dumps(body, separators=(",", ":")))
    os.replace(tmp, directory / INDEX)


class JobHistory:
    """Appends batches to a job's segments; rolls them by size and age."""

    def __init__(self, directory: Path, segment_bytes: int) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._index = load_index(directory)
        self._active: SegmentWriter | None = None
        self.session, self.last_seq = _last_marker(self._index.segments)
        self.last_write = time.time()

    @property
    def sealed(self) -> bool:
        return self._index.sealed

    def unstored(self, session: str, batches: Sequence[PackedBatch]) -> list[PackedBatch]:
        """The batches (seqs increasing) not stored yet: a replay after a
        reconnect repeats batches this history's last marker covers."""
        if session == self.session:
            return [batch for batch in batches if batch.seq > self.last_seq]
        return list(batches)

    def append(self, write: CompressedWrite) -> None:
        """Append a frame of `unstored` batches. Raises OSError (ENOSPC, EIO)
        with nothing of it kept."""
        writer = self._active or self._open_segment()
        try:
            writer.append(write)
        except OSError:
            self._retire(writer.abandon())
            raise
        self.session, self.last_seq = write.marker.session, write.marker.seq
        self.last_write = time.time()
        if writer.info.raw_bytes >= self._segment_bytes:
            self.finish_active()

    def finish_active(self) -> None:
        writer, self._active = self._active, None
        if writer is None:
            return
        try:
            info = writer.finish()
        except OSError as exc:
            log.error("cannot finish segment %s: %s (kept without its trailer)", writer.path, exc)
            info = writer.info
        self._retire(info)

    def roll_if_older(self, max_age_s: float, now: float) -> None:
        if self._active is not None and now - self._active.opened_at >= max_age_s:
            self.finish_active()

    def seal(self) -> bool:
        """Finish the active segment and mark the index sealed; False when
        the index could not be written."""
        self.finish_active()
        self._index.sealed = True
        return self._save()

    def finished(self) -> list[SegmentInfo]:
        """Copies of the finished segments' infos (the active one left out)."""
        return [copy.deepcopy(info) for info in self._index.segments]

    def snapshot(self) -> list[SegmentInfo]:
        """Copies of every segment's info, the active one's included."""
        infos = list(self._index.segments)
        if self._active is not None:
            infos.append(self._active.info)
        return [copy.deepcopy(info) for info in infos]

    def _open_segment(self) -> SegmentWriter:
        names = [info.name for info in self._index.segments]
        number = int(names[-1][len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]) + 1 if names else 1
        self._active = SegmentWriter(self.directory / segment_name(number))
        return self._active

    def _retire(self, info: SegmentInfo) -> None:
        self._active = None
        if info.stored_bytes == 0:  # nothing reached the file
            (self.directory / info.name).unlink(missing_ok=True)
            return
        self._index.segments.append(info)
        self._save()

    def _save(self) -> bool:
        try:
            save_index(self.directory, self._index)
        except OSError as exc:
            # Harmless: the next open scans the segments the index lacks.
            log.error("cannot write the index of %s: %s", self.directory, exc)
            return False
        return True


def _last_marker(segments: Sequence[SegmentInfo]) -> tuple[str, int]:
    for info in reversed(segments):
        if info.session:
            return info.session, info.last_seq
    return "", 0
