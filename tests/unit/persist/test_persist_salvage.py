"""Damaged segments: what `salvage` keeps, and the store quarantining them
when a history is opened (the original moved aside, never deleted)."""

import logging
from pathlib import Path

import pytest
import zstandard

from joblet.persist.store import HistoryStore, LogFilter, Marker, Record, read_logs
from joblet.persist.store.history import segment_files
from joblet.persist.store.records import pack_records
from joblet.persist.store.salvage import salvage


def _frames(count: int) -> list[bytes]:
    compressor = zstandard.ZstdCompressor(level=1, write_checksum=True)
    return [
        compressor.compress(pack_records([Record(1, n, b"line %d\n" % n)])) for n in range(count)
    ]


def test_salvage_keeps_the_frames_around_a_damaged_one() -> None:
    frames = _frames(5)
    data = bytearray(b"".join(frames))
    start = len(frames[0]) + len(frames[1]) // 2
    data[start : start + 4] = b"XXXX"
    found = salvage(bytes(data))
    assert [r.timestamp_ns for r in found.records] == [0, 2, 3, 4]
    assert found.damaged == [(len(frames[0]), len(frames[0]) + len(frames[1]))]


def test_salvage_of_a_cut_segment_keeps_the_whole_frames() -> None:
    data = b"".join(_frames(4))
    found = salvage(data[:-3])
    assert [r.timestamp_ns for r in found.records] == [0, 1, 2]
    assert len(found.damaged) == 1
    assert salvage(data).damaged == []


def _fill(store: HistoryStore, job: str, batches: int) -> list[Record]:
    written: list[Record] = []
    for b in range(batches):
        records = [
            Record(1, b * 100 + i + 1, b"batch %03d line %02d\n" % (b, i)) for i in range(20)
        ]
        assert store.append(job, records, Marker("s", b + 1))
        written += records
    return written


def _read(root: Path, job: str) -> list[Record]:
    snapshot = HistoryStore(root, segment_bytes=4096, level=1).snapshot(job)
    assert snapshot is not None
    return [r for chunk in read_logs(snapshot, LogFilter()) for r in chunk]


def _sealed_history(root: Path) -> tuple[list[Record], Path]:
    store = HistoryStore(root, segment_bytes=4096, level=1)
    written = _fill(store, "j", 30)
    store.seal("j")
    names = segment_files(root / "j")
    assert len(names) >= 3
    return written, root / "j" / names[len(names) // 2]


def test_an_overwritten_segment_is_quarantined_and_the_rest_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    written, middle = _sealed_history(tmp_path)
    original = middle.read_bytes()
    damaged = bytearray(original)
    damaged[60:64] = b"\xff\xff\xff\xff"  # inside the segment's first frame
    middle.write_bytes(bytes(damaged))
    with caplog.at_level(logging.ERROR):
        got = _read(tmp_path, "j")
    assert "damaged segment" in caplog.text and middle.name in caplog.text
    (aside,) = middle.parent.glob(f"{middle.name}.corrupt-*")
    assert aside.read_bytes() == bytes(damaged)  # kept as it was, for whoever looks
    lost = [r for r in written if r not in got]
    assert got == [r for r in written if r not in lost]  # in order, nothing invented
    assert 0 < len(lost) < 40  # one frame (a batch or two) of the segment, not all of it
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert _read(tmp_path, "j") == got  # repaired once: quiet from now on
    assert "damaged" not in caplog.text


def test_a_truncated_finished_segment_is_quarantined(tmp_path: Path) -> None:
    written, middle = _sealed_history(tmp_path)
    data = middle.read_bytes()
    middle.write_bytes(data[: len(data) // 2])
    got = _read(tmp_path, "j")
    assert len(list(middle.parent.glob(f"{middle.name}.corrupt-*"))) == 1
    assert got[0] == written[0] and got[-1] == written[-1]
    assert all(r in written for r in got) and len(got) < len(written)


def test_a_crash_mid_write_is_not_damage(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, segment_bytes=1 << 20, level=1)
    written = _fill(store, "j", 5)  # one active segment, never finished (persist killed)
    (active,) = segment_files(tmp_path / "j")
    path = tmp_path / "j" / active
    path.write_bytes(path.read_bytes() + b"\x28\xb5\x2f\xfd\x00")  # a frame cut short
    assert _read(tmp_path, "j") == written
    assert not list(path.parent.glob("*.corrupt-*"))
