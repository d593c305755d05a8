"""The relay's records: one writev each, whatever the pipe read returned."""

from __future__ import annotations

import os
from pathlib import Path

from joblet.isolation.relay import LogRelay, _after
from joblet.logs.format import Stream, decode_records


def test_after_drops_what_was_written() -> None:
    parts = [memoryview(b"head"), memoryview(b"output")]
    assert [bytes(p) for p in _after(parts, 0)] == [b"head", b"output"]
    assert [bytes(p) for p in _after(parts, 2)] == [b"ad", b"output"]
    assert [bytes(p) for p in _after(parts, 4)] == [b"output"]
    assert [bytes(p) for p in _after(parts, 7)] == [b"put"]
    assert _after(parts, 10) == []


def test_relay_reuses_its_buffer_without_mixing_reads(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    relay = LogRelay(str(log), max_bytes=1 << 30)
    read_end, write_end = os.pipe()
    sent = [b"a" * 60_000, b"bb", b"c" * 5]  # each fits the pipe (64 KiB)
    try:
        for data in sent:
            os.write(write_end, data)
            assert relay.pump(read_end, Stream.STDERR)
    finally:
        relay.close()
        os.close(read_end)
        os.close(write_end)
    records, used = decode_records(log.read_bytes())
    assert used == log.stat().st_size
    assert b"".join(r.data for r in records) == b"".join(sent)
    assert all(r.stream is Stream.STDERR and r.timestamp_ns > 0 for r in records)
