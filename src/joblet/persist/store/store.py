"""All jobs' histories of one kind (logs or metrics) under one directory."""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import zstandard

from joblet.errors import InvalidArgument
from joblet.persist.store.history import JobHistory, load_index
from joblet.persist.store.records import Marker, PackedBatch, Record
from joblet.persist.store.segment import ByteReader, SegmentInfo, compress_batches

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SEALED_REMEMBERED = 4096


@dataclass(frozen=True)
class JobUsage:
    """What retention needs to know about one job's history."""

    job_id: str
    last_write: float
    stored_bytes: int


@dataclass(frozen=True)
class Snapshot:
    directory: Path
    segments: list[SegmentInfo]
    # Where the segments' bytes come from when not from `directory` (an archive).
    opener: Callable[[SegmentInfo], AbstractContextManager[ByteReader]] | None = None
    # Where a segment gone from `directory` meanwhile is read from (an
    # archive holds it: the local copy was dropped while a query ran).
    fallback: Callable[[SegmentInfo], AbstractContextManager[ByteReader]] | None = None


def check_job_id(job_id: str) -> str:
    """A job id is a directory name: refuse anything that could leave the root."""
    if not _JOB_ID.fullmatch(job_id):
        raise InvalidArgument(f"invalid job id {job_id!r}")
    return job_id


class HistoryStore:
    """ROOT/<kind>/<job_id>/: open histories stay in memory until sealed or idle.

    Thread-safe: persist writes on a worker thread while the event loop takes
    snapshots for queries, rolls segments and runs retention. Appends come
    from one thread at a time; they compress outside the lock, so the event
    loop never waits for compression.
    """

    def __init__(self, root: Path, segment_bytes: int, level: int) -> None:
        self.root = root
        self._segment_bytes = segment_bytes
        self._zstd = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._open: dict[str, JobHistory] = {}
        # Histories sealed and not opened since, newest last: a job's end
        # seals its metrics twice (after its final sample, then with its
        # log), and the second must not load and rewrite the index again.
        self._sealed: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def append(self, job_id: str, records: Sequence[Record], marker: Marker) -> bool:
        """Write one batch; False when it is a replay of one already stored."""
        batch = PackedBatch.of_records(marker.seq, records)
        return bool(self.append_packed(job_id, marker.session, [batch]))

    def append_packed(self, job_id: str, session: str, batches: Sequence[PackedBatch]) -> int:
        """Write batches (seqs increasing) of one sender as one frame under one
        marker; the ones already stored (a replay) are skipped. Returns how
        many were written. Raises OSError (ENOSPC, EIO) with nothing of them
        kept, InvalidArgument for a bad job id."""
        with self._lock:
            fresh = self._history(job_id).unstored(session, batches)
        if not fresh:
            return 0
        write = compress_batches(self._zstd, session, fresh)
        with self._lock:
            # The history again: the roll may have put an idle one away meanwhile.
            self._history(job_id).append(write)
        return len(fresh)

    def seal(self, job_id: str) -> None:
        with self._lock:
            self._seal(job_id)

    def _seal(self, job_id: str) -> None:
        closed = check_job_id(job_id) not in self._open
        if closed and (job_id in self._sealed or not (self.root / job_id).is_dir()):
            return
        if self._history(job_id).seal():
            self._sealed[job_id] = None
            if len(self._sealed) > SEALED_REMEMBERED:
                self._sealed.popitem(last=False)
        del self._open[job_id]

    def delete(self, job_id: str) -> bool:
        with self._lock:
            return self._delete(job_id)

    def _delete(self, job_id: str) -> bool:
        self._sealed.pop(check_job_id(job_id), None)
        history = self._open.pop(job_id, None)
        if history is not None:
            history.finish_active()
        directory = self.root / job_id
        if not directory.exists():
            return False
        shutil.rmtree(directory, ignore_errors=True)
        return True

    def roll(self, max_age_s: float) -> None:
        """Finish segments open longer than max_age_s; forget idle histories."""
        now = time.monotonic()
        with self._lock:
            for job_id, history in list(self._open.items()):
                history.roll_if_older(max_age_s, now)
                if time.time() - history.last_write > max_age_s:
                    history.finish_active()
                    del self._open[job_id]

    def close(self) -> None:
        with self._lock:
            for history in self._open.values():
                history.finish_active()
            self._open.clear()

    def snapshot(self, job_id: str) -> Snapshot | None:
        """The segments a query reads, or None when the job has no history."""
        directory = self.root / check_job_id(job_id)
        with self._lock:
            history = self._open.get(job_id)
            if history is not None:
                return Snapshot(directory, history.snapshot())
            if not directory.is_dir():
                return None
            # Under the lock: opening an index may quarantine a damaged segment.
            return Snapshot(directory, load_index(directory).segments)

    def finished(self, job_id: str) -> tuple[bool, list[SegmentInfo]] | None:
        """Whether the job's history is sealed, and its finished segments
        (which never change again); None when it has no history here."""
        directory = self.root / check_job_id(job_id)
        with self._lock:
            history = self._open.get(job_id)
            if history is not None:
                return history.sealed, history.finished()
            if not directory.is_dir():
                return None
            index = load_index(directory)
            return index.sealed, index.segments

    def is_open(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._open

    def idle_s(self, job_id: str) -> float | None:
        """Seconds since the open history's last write; None when not open."""
        with self._lock:
            history = self._open.get(job_id)
            return None if history is None else time.time() - history.last_write

    def job_ids(self) -> list[str]:
        return sorted(
            d.name for d in self.root.iterdir() if d.is_dir() and _JOB_ID.fullmatch(d.name)
        )

    def check(self) -> int:
        """Open every stored history's index once, so that damaged segments
        are found and quarantined at start (history.py); returns how many."""
        count = 0
        for directory in sorted(self.root.iterdir()):
            if not (directory.is_dir() and _JOB_ID.fullmatch(directory.name)):
                continue
            with self._lock:
                if directory.name not in self._open:
                    load_index(directory)
            count += 1
        return count

    def usage(self) -> Iterator[JobUsage]:
        for directory in self.root.iterdir():
            if directory.is_dir():
                yield _usage(directory)

    def _history(self, job_id: str) -> JobHistory:
        history = self._open.get(check_job_id(job_id))
        if history is None:
            self._sealed.pop(job_id, None)  # written again: its next seal is real
            history = JobHistory(self.root / job_id, self._segment_bytes)
            self._open[job_id] = history
        return history


def _usage(directory: Path) -> JobUsage:
    size = 0
    newest = 0.0  # the newest file's mtime; the directory's own only if it is empty
    for path in directory.iterdir():
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        size += stat.st_size
        newest = max(newest, stat.st_mtime)
    return JobUsage(directory.name, newest or directory.stat().st_mtime, size)
