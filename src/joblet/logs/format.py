"""The on-disk format of a job's output log.

The launcher appends one record per read from the job's stdout or stderr pipe:

    struct header { u8 stream; u64 timestamp_ns; u32 length; }  (little endian)
    followed by `length` bytes of output.

Keeping the stream and the time per chunk lets readers tell stdout from stderr
and filter by time. The file is append-only and written by one process, so a
reader that stops at an incomplete trailing record simply retries later.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

HEADER = struct.Struct("<BQI")
MAX_RECORD_PAYLOAD = 1 << 20


class Stream(IntEnum):
    STDOUT = 1
    STDERR = 2
    SYSTEM = 3  # lines the system adds, such as "output truncated"


class Framed(Protocol):
    """What readers need of a record, owned (LogRecord) or borrowed (RecordView)."""

    @property
    def stream(self) -> Stream: ...

    @property
    def timestamp_ns(self) -> int: ...

    @property
    def data(self) -> bytes | memoryview: ...


@dataclass(frozen=True)
class LogRecord:
    stream: Stream
    timestamp_ns: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RecordView:
    """A record inside a reader's buffer. `data` is borrowed: it is valid only
    until the reader reads again, so keep `owned()` of anything kept longer."""

    stream: Stream
    timestamp_ns: int
    data: memoryview

    def owned(self) -> LogRecord:
        return LogRecord(self.stream, self.timestamp_ns, bytes(self.data))


def encode_record(stream: Stream, timestamp_ns: int, data: bytes) -> bytes:
    return HEADER.pack(stream, timestamp_ns, len(data)) + data


def scan_records(view: memoryview, start: int, end: int) -> tuple[list[RecordView], int]:
    """The whole records in `view[start:end]`, without copying their output,
    and the offset where the first incomplete one (or `end`) begins."""
    records: list[RecordView] = []
    pos = start
    while end - pos >= HEADER.size:
        stream, ts, length = HEADER.unpack_from(view, pos)
        stop = pos + HEADER.size + length
        if stop > end:
            break
        records.append(RecordView(Stream(stream), ts, view[pos + HEADER.size : stop]))
        pos = stop
    return records, pos


def decode_records(buf: bytes | memoryview) -> tuple[list[LogRecord], int]:
    """Decode whole records from `buf`; return them and the bytes consumed."""
    views, used = scan_records(memoryview(buf), 0, len(buf))
    return [view.owned() for view in views], used


def record_length(view: memoryview, start: int, end: int) -> int:
    """The full length of the record starting at `start`, or 0 while its
    header is incomplete."""
    if end - start < HEADER.size:
        return 0
    return int(HEADER.size + HEADER.unpack_from(view, start)[2])
