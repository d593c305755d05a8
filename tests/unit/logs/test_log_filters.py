from __future__ import annotations

import pytest

from joblet.logs.filters import LogFilter, last_lines, select
from joblet.logs.format import LogRecord, Stream


def rec(data: bytes, stream: Stream = Stream.STDOUT, ts: int = 0) -> LogRecord:
    return LogRecord(stream, ts, data)


def text(records: list[LogRecord]) -> bytes:
    return b"".join(r.data for r in records)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, b"e\n"),
        (2, b"d\ne\n"),
        (3, b"c\nd\ne\n"),
        (5, b"a\nb\nc\nd\ne\n"),
        (9, b"a\nb\nc\nd\ne\n"),
    ],
)
def test_last_lines_across_records(count: int, expected: bytes) -> None:
    records = [rec(b"a\nb\nc"), rec(b"\nd\n"), rec(b"e\n")]
    assert text(last_lines(records, count)) == expected


def test_last_lines_counts_unterminated_final_line() -> None:
    assert text(last_lines([rec(b"a\nb\nc")], 1)) == b"c"
    assert text(last_lines([rec(b"a\nb\nc")], 2)) == b"b\nc"


def test_select_by_stream_and_time() -> None:
    records = [
        rec(b"o1", Stream.STDOUT, 1),
        rec(b"e1", Stream.STDERR, 2),
        rec(b"sys", Stream.SYSTEM, 3),
        rec(b"o2", Stream.STDOUT, 4),
    ]
    assert text(select(records, LogFilter(stream=Stream.STDERR))) == b"e1sys"
    assert text(select(records, LogFilter(since_ns=3))) == b"syso2"
    assert text(select(records, LogFilter())) == b"o1e1syso2"
