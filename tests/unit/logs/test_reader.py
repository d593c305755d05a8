from __future__ import annotations

import os
from pathlib import Path

import pytest

from joblet.logs.format import (
    HEADER,
    LogRecord,
    Stream,
    decode_records,
    encode_record,
    scan_records,
)
from joblet.logs.reader import (
    CHUNK_BYTES,
    INITIAL_BUFFER_BYTES,
    MAX_BUFFER_BYTES,
    LogCursor,
    coalesce,
)


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


def _write(path: Path, *records: bytes) -> None:
    with path.open("ab") as f:
        for record in records:
            f.write(record)


def test_cursor_grows_for_a_record_larger_than_its_buffer(tmp_path: Path) -> None:
    path = tmp_path / "log"
    big = bytes(range(256)) * (INITIAL_BUFFER_BYTES // 256 * 3 + 1)
    _write(path, encode_record(Stream.STDOUT, 1, b"a"), encode_record(Stream.STDERR, 2, big))
    fd = os.open(path, os.O_RDONLY)
    try:
        cursor = LogCursor()
        got = cursor.read_owned(fd)
    finally:
        os.close(fd)
    assert [(r.stream, r.timestamp_ns, r.data) for r in got] == [
        (Stream.STDOUT, 1, b"a"),
        (Stream.STDERR, 2, big),
    ]
    assert cursor.offset == path.stat().st_size


def test_cursor_reads_a_long_log_in_bounded_batches(tmp_path: Path) -> None:
    path = tmp_path / "log"
    payloads = [bytes([i]) * (300_000 + i) for i in range(30)]  # ~9 MB, past the buffer's cap
    _write(path, *(encode_record(Stream.STDOUT, i, p) for i, p in enumerate(payloads)))
    fd = os.open(path, os.O_RDONLY)
    try:
        cursor, seen, batches = LogCursor(), [], 0
        while batch := cursor.read(fd):
            batches += 1
            assert sum(len(v.data) for v in batch) <= MAX_BUFFER_BYTES
            seen += [(v.timestamp_ns, bytes(v.data)) for v in batch]  # copied before reading on
    finally:
        os.close(fd)
    assert seen == list(enumerate(payloads))
    assert batches > 2


def test_cursor_finds_a_record_split_across_reads(tmp_path: Path) -> None:
    path = tmp_path / "log"
    record = encode_record(Stream.STDOUT, 7, b"z" * (INITIAL_BUFFER_BYTES + 5))
    fd = os.open(path, os.O_RDONLY | os.O_CREAT)
    try:
        cursor = LogCursor()
        got = []
        written = 0
        for cut in (3, 20, INITIAL_BUFFER_BYTES - 1, len(record)):
            _write(path, record[written:cut])
            written = cut
            got += [v.owned() for v in cursor.read(fd)]
            assert (got != []) == (cut == len(record))
    finally:
        os.close(fd)
    assert got == [LogRecord(Stream.STDOUT, 7, b"z" * (INITIAL_BUFFER_BYTES + 5))]


def test_coalesce_puts_a_head_before_each_chunk() -> None:
    records = [LogRecord(Stream.STDOUT, 1, b"abcdefg"), LogRecord(Stream.STDOUT, 2, b"hij")]
    chunks = coalesce(records, limit=4, head=lambda size: b"<%d>" % size)
    assert chunks == [b"<4>abcd", b"<4>efgh", b"<2>ij"]


def test_views_and_owned_records_coalesce_alike() -> None:
    buf = encode_record(Stream.STDOUT, 1, b"out") + encode_record(Stream.SYSTEM, 2, b"note\n")
    views, used = scan_records(memoryview(buf), 0, len(buf))
    assert used == len(buf)
    owned = [v.owned() for v in views]
    assert coalesce(views) == coalesce(owned) == [b"out[joblet] note\n"]


def test_cursor_refuses_a_record_claiming_an_absurd_length(tmp_path: Path) -> None:
    path = tmp_path / "log"
    _write(path, encode_record(Stream.STDOUT, 1, b"ok"), HEADER.pack(1, 2, 2**32 - 1) + b"x")
    fd = os.open(path, os.O_RDONLY)
    try:
        cursor = LogCursor()
        assert [bytes(v.data) for v in cursor.read(fd)] == [b"ok"]
        with pytest.raises(ValueError, match="damaged"):
            cursor.read(fd)
    finally:
        os.close(fd)


def test_cursor_keeps_a_partial_record_that_overlaps_its_new_place(tmp_path: Path) -> None:
    path = tmp_path / "log"
    small = encode_record(Stream.STDOUT, 1, b"s")
    big_payload = bytes(range(256)) * 200  # 51,200 bytes: its move to the front overlaps
    big = encode_record(Stream.STDERR, 2, big_payload)
    _write(path, small, big[:40_000])
    fd = os.open(path, os.O_RDONLY)
    try:
        cursor = LogCursor()
        assert [bytes(v.data) for v in cursor.read(fd)] == [b"s"]
        _write(path, big[40_000:])
        assert [v.owned() for v in cursor.read(fd)] == [LogRecord(Stream.STDERR, 2, big_payload)]
    finally:
        os.close(fd)


def test_cursor_gives_back_what_a_burst_grew(tmp_path: Path) -> None:
    """Every running job has a cursor (its copy to persist): after a burst
    its buffer shrinks back once the job writes little again."""
    path = tmp_path / "log"
    _write(path, *(encode_record(Stream.STDOUT, i, b"b" * 200_000) for i in range(20)))
    fd = os.open(path, os.O_RDONLY)
    try:
        cursor = LogCursor()
        assert cursor.buffer_bytes == INITIAL_BUFFER_BYTES
        while cursor.read(fd):
            pass
        grown = cursor.buffer_bytes
        assert grown >= 512 * 1024
        for i in range(12):  # a quiet job: a short line now and then
            _write(path, encode_record(Stream.STDOUT, 100 + i, b"tick\n"))
            assert [bytes(v.data) for v in cursor.read(fd)] == [b"tick\n"]
        assert cursor.buffer_bytes == INITIAL_BUFFER_BYTES
    finally:
        os.close(fd)
