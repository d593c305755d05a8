from __future__ import annotations

import os
from pathlib import Path

from joblet.logs.format import LogRecord, Stream, decode_records, encode_record
from joblet.logs.reader import CHUNK_BYTES, LogCursor, coalesce


def test_round_trip_and_partial_record_waits() -> None:
    blob = encode_record(Stream.STDOUT, 1, b"abc") + encode_record(Stream.STDERR, 2, b"de")
    records, used = decode_records(blob[:-1])
    assert [r.data for r in records] == [b"abc"]
    assert used == len(encode_record(Stream.STDOUT, 1, b"abc"))
    records, used = decode_records(blob)
    assert [(r.stream, r.timestamp_ns, r.data) for r in records] == [
        (Stream.STDOUT, 1, b"abc"),
        (Stream.STDERR, 2, b"de"),
    ]
    assert used == len(blob)


def test_cursor_reads_only_new_whole_records(tmp_path: Path) -> None:
    path = tmp_path / "log"
    first = encode_record(Stream.STDOUT, 1, b"one")
    second = encode_record(Stream.STDOUT, 2, b"two")
    path.write_bytes(first + second[:5])
    fd = os.open(path, os.O_RDONLY)
    try:
        cursor = LogCursor()
        assert [r.data for r in cursor.read(fd)] == [b"one"]
        assert cursor.read(fd) == []
        with path.open("ab") as f:
            f.write(second[5:])
        assert [r.data for r in cursor.read(fd)] == [b"two"]
    finally:
        os.close(fd)


def test_coalesce_keeps_order_and_bounds_chunks() -> None:
    big = b"x" * (CHUNK_BYTES + 10)
    records = [
        LogRecord(Stream.STDOUT, 1, b"a"),
        LogRecord(Stream.STDERR, 2, big),
        LogRecord(Stream.SYSTEM, 3, b"truncated\n"),
    ]
    chunks = coalesce(records)
    assert all(len(c) <= CHUNK_BYTES for c in chunks)
    assert b"".join(chunks) == b"a" + big + b"[joblet] truncated\n"
    assert len(chunks) == 2
