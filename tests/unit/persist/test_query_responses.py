"""QueryLogs answers in responses a stock gRPC client accepts (4 MiB), however
many bytes one read of the store brings (an archived segment's ranged read
once brought 4.3 MB in one response, and the daemon refused it)."""

from __future__ import annotations

from joblet.persist.query_service import MAX_RESPONSE_BYTES, _log_responses
from joblet.persist.store import Record

GRPC_DEFAULT_MAX = 4 << 20


def test_a_big_read_is_split_in_order_and_nothing_is_lost() -> None:
    records = [Record(1, n, bytes([n % 256]) * 300_000) for n in range(40)]  # 12 MB
    responses = list(_log_responses(records))
    assert len(responses) > 1
    assert all(r.ByteSize() <= min(GRPC_DEFAULT_MAX, 2 * MAX_RESPONSE_BYTES) for r in responses)
    got = [(e.timestamp_ns, e.data) for r in responses for e in r.entries]
    assert got == [(r.timestamp_ns, r.data) for r in records]


def test_one_record_bigger_than_the_bound_travels_alone() -> None:
    big = Record(2, 7, b"x" * (MAX_RESPONSE_BYTES + 1))
    small = Record(1, 8, b"y")
    responses = list(_log_responses([small, big, small]))
    assert [len(r.entries) for r in responses] == [1, 1, 1]


def test_nothing_read_answers_nothing() -> None:
    assert list(_log_responses([])) == []
