"""Read a job's framed log file and turn its records into output chunks.

Pure apart from `pread`: the follower in `joblet.logs.follow` decides when to
read again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from joblet.logs.format import LogRecord, Stream, decode_records

CHUNK_BYTES = 64 * 1024  # the most output one DataChunk carries
READ_BYTES = 1024 * 1024


@dataclass
class LogCursor:
    """A reader's position in one log file; `pending` holds a partial record."""

    offset: int = 0
    pending: bytes = b""

    def read(self, fd: int) -> list[LogRecord]:
        """Every whole record written since the last call (may be empty)."""
        records: list[LogRecord] = []
        while True:
            data = os.pread(fd, READ_BYTES, self.offset)
            if not data:
                return records
            self.offset += len(data)
            buf = self.pending + data if self.pending else data
            batch, used = decode_records(buf)
            self.pending = bytes(buf[used:])
            records.extend(batch)
            if len(data) < READ_BYTES:
                return records


def coalesce(records: Iterable[LogRecord], limit: int = CHUNK_BYTES) -> list[bytes]:
    """Join the payloads of stdout and stderr records into chunks of at most
    `limit` bytes, keeping their order. System records are shown too."""
    chunks: list[bytes] = []
    parts: list[bytes] = []
    size = 0
    for record in records:
        data = record.data
        if record.stream is Stream.SYSTEM:
            data = b"[joblet] " + data
        while data:
            room = limit - size
            piece, data = data[:room], data[room:]
            parts.append(piece)
            size += len(piece)
            if size >= limit:
                chunks.append(b"".join(parts))
                parts, size = [], 0
    if parts:
        chunks.append(b"".join(parts))
    return chunks
