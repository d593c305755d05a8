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

HEADER = struct.Struct("<BQI")
MAX_RECORD_PAYLOAD = 1 << 20


class Stream(IntEnum):
    STDOUT = 1
    STDERR = 2
    SYSTEM = 3  # lines the system adds, such as "output truncated"


@dataclass(frozen=True)
class LogRecord:
    stream: Stream
    timestamp_ns: int
    data: bytes


def encode_record(stream: Stream, timestamp_ns: int, data: bytes) -> bytes:
    return HEADER.pack(stream, timestamp_ns, len(data)) + data


def decode_records(buf: bytes | memoryview) -> tuple[list[LogRecord], int]:
    """Decode whole records from `buf`; return them and the bytes consumed."""
    records: list[LogRecord] = []
    view = memoryview(buf)
    pos = 0
    end = len(view)
    while end - pos >= HEADER.size:
        stream, ts, length = HEADER.unpack_from(view, pos)
        stop = pos + HEADER.size + length
        if stop > end:
            break
        records.append(LogRecord(Stream(stream), ts, bytes(view[pos + HEADER.size : stop])))
        pos = stop
    return records, pos
