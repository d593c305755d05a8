from joblet.persist.store.records import Marker, Record, decode, encode_batch, tail_lines


def _recs(*chunks: bytes) -> list[Record]:
    return [Record(1, i, c) for i, c in enumerate(chunks)]


def _text(records: list[Record]) -> bytes:
    return b"".join(r.data for r in records)


def test_batch_round_trip_ends_with_marker() -> None:
    records = _recs(b"a\n", b"bc")
    decoded, used = decode(encode_batch(records, Marker("s1", 7)))
    assert decoded[:2] == records
    assert decoded[2] == Record(0, 7, b"s1")
    assert used == len(encode_batch(records, Marker("s1", 7)))


def test_decode_stops_at_partial_record() -> None:
    data = encode_batch(_recs(b"hello"), Marker("s", 1))
    decoded, used = decode(data[:-1])
    assert decoded == _recs(b"hello")
    assert used < len(data)


def test_tail_counts_lines_across_records() -> None:
    records = _recs(b"one\ntw", b"o\nthree\n", b"four\n")
    assert _text(tail_lines(records, 2)) == b"three\nfour\n"
    assert _text(tail_lines(records, 3)) == b"two\nthree\nfour\n"
    assert _text(tail_lines(records, 10)) == b"one\ntwo\nthree\nfour\n"
    assert tail_lines(records, 0) == []


def test_tail_counts_an_unterminated_last_line() -> None:
    records = _recs(b"a\nb\n", b"partial")
    assert _text(tail_lines(records, 1)) == b"partial"
    assert _text(tail_lines(records, 2)) == b"b\npartial"


def test_tail_keeps_timestamps_of_cut_record() -> None:
    kept = tail_lines(_recs(b"x\ny\n"), 1)
    assert kept == [Record(1, 0, b"y\n")]
