"""Which log records a reader asked for: stream, since, tail. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from joblet.logs.format import Framed, LogRecord, Stream

_Record = TypeVar("_Record", bound=Framed)


@dataclass(frozen=True)
class LogFilter:
    stream: Stream | None = None  # None = stdout and stderr (and system lines)
    since_ns: int = 0  # 0 = from the start
    tail_lines: int = 0  # 0 = everything
    follow: bool = True  # keep streaming a running job's new output
    timestamps: bool = False  # each line starts with the time it was written

    def admits(self, record: Framed) -> bool:
        if record.timestamp_ns < self.since_ns:
            return False
        return self.stream is None or record.stream in (self.stream, Stream.SYSTEM)


def select(records: Iterable[_Record], log_filter: LogFilter) -> list[_Record]:
    if log_filter.stream is None and not log_filter.since_ns:
        return list(records)
    return [r for r in records if log_filter.admits(r)]


def last_lines(records: Sequence[LogRecord], count: int) -> list[LogRecord]:
    """The records holding the last `count` lines; the first one is cut at a
    line start. A final line without a newline counts as a line."""
    if count <= 0:
        return list(records)
    newlines = 0
    for index in range(len(records) - 1, -1, -1):
        data = records[index].data
        end = len(data) - 1 if index == len(records) - 1 and data.endswith(b"\n") else len(data)
        pos = end
        while True:
            pos = data.rfind(b"\n", 0, pos)
            if pos < 0:
                break
            newlines += 1
            if newlines == count:
                kept = replace(records[index], data=data[pos + 1 :])
                return [kept, *records[index + 1 :]] if kept.data else list(records[index + 1 :])
    return list(records)
