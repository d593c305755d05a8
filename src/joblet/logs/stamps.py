"""`docker logs -t`: each line of output starts with the time it was written
(the time of the log record it begins in, RFC 3339 with nanoseconds). Pure."""

from __future__ import annotations

import time
from collections.abc import Iterable

from joblet.logs.format import Framed, LogRecord, Stream


def format_ns(timestamp_ns: int) -> bytes:
    """`2026-01-02T03:04:05.000000123Z` for Unix nanoseconds."""
    seconds, ns = divmod(timestamp_ns, 1_000_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{ns:09d}Z".encode()


class LineStamper:
    """Puts the time before each line, across records cut anywhere: a line
    that goes on in the next record of its stream is stamped once."""

    def __init__(self) -> None:
        self._at_line_start = {stream: True for stream in Stream}

    def stamp(self, records: Iterable[Framed]) -> list[LogRecord]:
        return [self._stamp_one(record) for record in records]

    def _stamp_one(self, record: Framed) -> LogRecord:
        data = bytes(record.data)
        prefix = format_ns(record.timestamp_ns) + b" "
        lines = data.split(b"\n")
        stamped = []
        fresh = self._at_line_start[record.stream]
        for index, line in enumerate(lines):
            last = index == len(lines) - 1
            if last and not line:
                break  # the record ended a line: the next one starts fresh
            stamped.append(prefix + line if fresh or index else line)
        self._at_line_start[record.stream] = data.endswith(b"\n")
        body = b"\n".join(stamped) + (b"\n" if data.endswith(b"\n") else b"")
        return LogRecord(record.stream, record.timestamp_ns, body)
