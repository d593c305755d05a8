"""`rnx log -t`: the time before each line, across records cut anywhere."""

from __future__ import annotations

from joblet.logs.format import LogRecord, Stream
from joblet.logs.stamps import LineStamper, format_ns

T1 = 1_767_323_045_000_000_123  # 2026-01-02T03:04:05.000000123Z
T2 = T1 + 1_000_000_000


def test_format_ns_is_rfc3339_with_nanoseconds() -> None:
    assert format_ns(T1) == b"2026-01-02T03:04:05.000000123Z"


def _joined(records: list[LogRecord]) -> bytes:
    return b"".join(r.data for r in LineStamper().stamp(records))


def test_each_line_gets_the_time_of_the_record_it_starts_in() -> None:
    out = _joined(
        [
            LogRecord(Stream.STDOUT, T1, b"a\nb"),
            LogRecord(Stream.STDOUT, T2, b"c\nd\n"),
        ]
    )
    first, second = format_ns(T1), format_ns(T2)
    assert out == first + b" a\n" + first + b" bc\n" + second + b" d\n"


def test_streams_keep_their_own_line_state() -> None:
    stamper = LineStamper()
    out = stamper.stamp(
        [
            LogRecord(Stream.STDOUT, T1, b"par"),
            LogRecord(Stream.STDERR, T2, b"err\n"),
            LogRecord(Stream.STDOUT, T2, b"tial\n"),
        ]
    )
    assert [r.data for r in out] == [
        format_ns(T1) + b" par",
        format_ns(T2) + b" err\n",
        b"tial\n",
    ]
