"""One segment file: zstd frames holding a run of records.

zstd rather than gzip: at level 1 it compresses log text about twice as fast
as zlib's fastest level on the same core (155 vs 75 MB/s here), which the
>= 100 MB/s ingest target needs, and compresses better.

Writing: each write (the batches of one job that arrived together, then
their marker) is one complete zstd frame, with its checksum, appended with
one write call; so every acknowledged batch can be decompressed from the file
(a SIGKILL loses nothing the OS already has). One-shot frames compress about
15 % faster than one long streamed frame flushed after each write (no copy
into zstd's window, no wrap-around of it), and from a few hundred KB per
write on they compress as well. Finishing a segment fsyncs it.

Segments written before this layout hold a single streamed frame, flushed
after each write and ended when the segment was finished; readers take both.
Reading tolerates a frame that stops early (the tail of a segment persist was
writing when it died) and reports a frame whose bytes are damaged.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import zstandard

from joblet.persist.store.records import (
    MARKER,
    CorruptRecord,
    Marker,
    PackedBatch,
    PackedSummary,
    Record,
    decode,
    encode_marker,
    merge_summaries,
)

log = logging.getLogger(__name__)

# Compressed bytes read per step: few at first, so that a query's first
# message is small and quick to build and send (the first block or two, at
# most 128 KiB each once inflated), then more, so that reading a whole log
# takes few steps.
FIRST_READ = 8 * 1024
READ_CHUNK = 128 * 1024


class ByteReader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class CorruptSegment(Exception):
    """A segment's bytes cannot be decompressed or decoded."""


@dataclass
class SegmentInfo:
    """What the index knows of a segment without opening it."""

    name: str
    first_ts: int = 0
    last_ts: int = 0
    records: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    session: str = ""
    last_seq: int = 0

    def add(self, record: Record) -> None:
        if record.kind == MARKER:
            self.session, self.last_seq = record.data.decode(), record.timestamp_ns
            return
        self.add_summary(
            PackedSummary(1, len(record.data), record.timestamp_ns, record.timestamp_ns)
        )

    def add_summary(self, summary: PackedSummary) -> None:
        if not summary.records:
            return
        if not self.records or summary.first_ts < self.first_ts:
            self.first_ts = summary.first_ts
        self.last_ts = max(self.last_ts, summary.last_ts)
        self.records += summary.records
        self.raw_bytes += summary.raw_bytes

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SegmentInfo:
        # Keys this version does not know (older indexes kept line counts) are ignored.
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in raw.items() if key in known})


@dataclass(frozen=True)
class CompressedWrite:
    """Batches of one job made into one frame, ready to be appended."""

    frame: bytes
    summary: PackedSummary
    marker: Marker
    batches: int


def compress_batches(
    compressor: zstandard.ZstdCompressor, session: str, batches: Sequence[PackedBatch]
) -> CompressedWrite:
    """One frame: the batches' records, then a marker with the last seq.
    zstd releases the GIL while it compresses, so other threads run meanwhile."""
    marker = Marker(session, batches[-1].seq)
    frame = compressor.compress(b"".join([*(b.data for b in batches), encode_marker(marker)]))
    return CompressedWrite(
        frame, merge_summaries([b.summary for b in batches]), marker, len(batches)
    )


class SegmentWriter:
    """Appends frames to a new segment file; owned by one job's history."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.info = SegmentInfo(path.name)
        self.opened_at = time.monotonic()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        self._offset = 0

    def append(self, write: CompressedWrite) -> None:
        """Append one frame with one write call. On OSError the file is cut
        back to the previous frame (and the history retires this writer)."""
        self._write(write.frame)
        self.info.add_summary(write.summary)
        self.info.session, self.info.last_seq = write.marker.session, write.marker.seq
        self.info.stored_bytes = self._offset

    def finish(self) -> SegmentInfo:
        """Fsync and close."""
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
        self.info.stored_bytes = self._offset
        return self.info

    def abandon(self) -> SegmentInfo:
        """Close without the fsync (after a failed write)."""
        try:
            os.close(self._fd)
        except OSError as exc:
            log.error("closing %s: %s", self.path, exc)
        return self.info

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.pwrite(self._fd, view[done:], self._offset + done)
        except OSError:
            # Give back what a partial write took, so the file ends at a batch boundary.
            try:
                os.ftruncate(self._fd, self._offset)
            except OSError as exc:
                log.error("cannot cut %s back to %d bytes: %s", self.path, self._offset, exc)
            raise
        self._offset += done


def iter_records(path: Path) -> Iterator[list[Record]]:
    """Records of one segment file, a chunk at a time (markers included)."""
    with path.open("rb") as handle:
        yield from iter_stream_records(handle, str(path))


def iter_stream_records(handle: ByteReader, label: str) -> Iterator[list[Record]]:
    """Records of one segment read from `handle` (a file, an object store's
    stream), a chunk at a time (markers included).

    Stops quietly at a frame that ends early or a record cut short; raises
    CorruptSegment for damaged bytes (after yielding what came before them).
    """
    # A decompressobj, not a stream_reader: reading a frame that ends early
    # (an older layout's active segment) in small steps, stream_reader drops
    # output zstd still holds when the file ends; decompressobj hands out all
    # of it.
    decompressor = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    pending = b""
    step = FIRST_READ
    while chunk := handle.read(step):
        step = min(step * 2, READ_CHUNK)
        try:
            pending += decompressor.decompress(chunk)
            records, used = decode(pending)
        except (zstandard.ZstdError, CorruptRecord) as exc:
            raise CorruptSegment(f"{label}: {exc}") from exc
        pending = pending[used:]
        if records:
            yield records
    if pending:
        log.debug("segment %s ends inside a record (%d bytes)", label, len(pending))


def scan(path: Path) -> SegmentInfo:
    """Rebuild a segment's index entry by reading it (recovery after a crash)."""
    return scan_checked(path)[0]


def scan_checked(path: Path) -> tuple[SegmentInfo, bool]:
    """The segment's index entry, and whether damaged bytes stopped the reading."""
    info = SegmentInfo(path.name)
    damaged = False
    try:
        for records in iter_records(path):
            for record in records:
                info.add(record)
    except CorruptSegment as exc:
        log.error("segment is damaged; indexed up to the damage: %s", exc)
        damaged = True
    info.stored_bytes = path.stat().st_size
    return info, damaged
