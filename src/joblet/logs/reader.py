"""Read a job's framed log file and turn its records into output chunks.

Pure apart from `preadv`: the follower in `joblet.logs.follow` decides when
to read again.

A cursor reads into one buffer it keeps, and hands out records whose output
is a view into that buffer (`RecordView`): the only copy of the output on
its way to a reader is the one that builds the chunk (or persist frame) sent
on. A fresh multi-megabyte object per read would cost more in allocation and
page faults than the copy out of the page cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from joblet.logs.format import Framed, LogRecord, RecordView, Stream, record_length, scan_records

# The most output one DataChunk carries. Far below gRPC's default 4 MiB
# message limit, which clients of other implementations keep; big enough that
# a fast job's output costs few messages.
CHUNK_BYTES = 1024 * 1024
# A quiet job's follower stays this small: every running job has one (its
# copy to persist), and 64 KiB each was two thirds of a running job's cost
# in the daemon's memory.
INITIAL_BUFFER_BYTES = 4 * 1024
MAX_BUFFER_BYTES = 4 * 1024 * 1024  # one behind a fast writer grows up to this
# The launcher writes records of up to 1 MiB; a length far past that means a
# damaged file, which must not make a reader allocate whatever it claims.
SANE_RECORD_BYTES = 64 * 1024 * 1024
SYSTEM_PREFIX = b"[joblet] "

ChunkHead = Callable[[int], bytes]  # bytes put before each chunk, given its size


class LogCursor:
    """A reader's position in one log file and the buffer it reads into."""

    def __init__(self) -> None:
        self.offset = 0  # file offset of the end of what the buffer holds
        self._buffer = bytearray(INITIAL_BUFFER_BYTES)
        self._start = 0  # first byte not yet handed out (a partial record)
        self._end = 0  # end of the bytes read into the buffer
        self._filled = False  # the last read filled the buffer: the writer is ahead
        self._last = 0  # bytes the last read returned

    @property
    def buffer_bytes(self) -> int:
        return len(self._buffer)

    def read(self, fd: int) -> list[RecordView]:
        """Whole records written since the last call, up to a buffer's worth;
        empty when nothing new (or only part of a record) is there. Their
        views stay valid until the next call."""
        while True:
            self._make_room()
            room = memoryview(self._buffer)[self._end :]
            size = os.preadv(fd, [room], self.offset)
            self.offset += size
            self._end += size
            self._filled = size == len(room)
            self._last = size
            records, self._start = scan_records(memoryview(self._buffer), self._start, self._end)
            if records or not self._filled:
                return records
            # The buffer holds only part of one record: make room and go on.

    def read_owned(self, fd: int) -> list[LogRecord]:
        """Every whole record written so far, as owned copies."""
        records: list[LogRecord] = []
        while batch := self.read(fd):
            records.extend(view.owned() for view in batch)
        return records

    def _make_room(self) -> None:
        """Move the partial record to the front, growing the buffer when a
        record does not fit or the writer keeps filling it."""
        pending = self._end - self._start
        view = memoryview(self._buffer)
        needed = max(pending + 1, record_length(view, self._start, self._end))
        if needed > SANE_RECORD_BYTES:
            at = self.offset - pending
            raise ValueError(f"log record of {needed} bytes at offset {at}: the log is damaged")
        size = len(self._buffer)
        if self._filled and size < MAX_BUFFER_BYTES:
            size *= 2
        elif not self._filled and self._last * 8 < size:
            # The writer has slowed down: give back what a burst grew, a
            # quarter at a time, so a steady writer does not make it thrash.
            size = max(INITIAL_BUFFER_BYTES, size // 4)
        while size < needed:
            size *= 2
        if size != len(self._buffer) or 0 < self._start < pending:
            # A new buffer, not a resize: readers may still hold views of the
            # old one. Also when source and destination would overlap: slice
            # assignment copies with memcpy, which does not allow that.
            fresh = bytearray(size)
            fresh[:pending] = view[self._start : self._end]
            self._buffer = fresh
        elif self._start:
            self._buffer[:pending] = view[self._start : self._end]
        self._start, self._end = 0, pending


def coalesce(
    records: Iterable[Framed], limit: int = CHUNK_BYTES, head: ChunkHead | None = None
) -> list[bytes]:
    """Join the output of stdout and stderr records into chunks of at most
    `limit` bytes, keeping their order. System records are shown too. With
    `head`, each chunk starts with `head(its size)` (such as the header of a
    serialized message), joined in the same copy as the output."""
    chunks: list[bytes] = []
    parts: list[bytes | memoryview] = []
    size = 0
    for record in records:
        data = memoryview(record.data)
        if record.stream is Stream.SYSTEM:
            data = memoryview(SYSTEM_PREFIX + data)
        while data:
            piece, data = data[: limit - size], data[limit - size :]
            parts.append(piece)
            size += len(piece)
            if size >= limit:
                chunks.append(_join(parts, size, head))
                parts, size = [], 0
    if parts:
        chunks.append(_join(parts, size, head))
    return chunks


def _join(parts: list[bytes | memoryview], size: int, head: ChunkHead | None) -> bytes:
    return b"".join([head(size), *parts] if head is not None else parts)
