import json
import logging
import random
from pathlib import Path

import pytest
import zstandard

from joblet.errors import InvalidArgument
from joblet.persist.store import HistoryStore, LogFilter, Marker, Record, read_logs
from joblet.persist.store.history import INDEX, segment_files
from joblet.persist.store.records import PackedBatch, encode_batch

LINE = b"the quick brown fox jumps over the lazy dog %06d\n"


def _fill(store: HistoryStore, job: str, batches: int, per_batch: int = 20) -> list[Record]:
    written: list[Record] = []
    for b in range(batches):
        recs = [
            Record(1 if i % 4 else 2, (b * per_batch + i + 1) * 1000, LINE % (b * per_batch + i))
            for i in range(per_batch)
        ]
        assert store.append(job, recs, Marker("s", b + 1))
        written.extend(recs)
    return written


def _read(store: HistoryStore, job: str, flt: LogFilter | None = None) -> list[Record]:
    snap = store.snapshot(job)
    assert snap is not None
    return [r for chunk in read_logs(snap, flt or LogFilter()) for r in chunk]


def test_segments_roll_and_are_compressed(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, segment_bytes=4096, level=1)
    written = _fill(store, "job1", 30)
    store.seal("job1")
    names = segment_files(tmp_path / "job1")
    assert len(names) > 5
    raw = sum(len(r.data) for r in written)
    stored = sum((tmp_path / "job1" / n).stat().st_size for n in names)
    assert stored < raw / 3
    # a segment is whole zstd frames, one per write: the zstd tool reads it
    inflater = zstandard.ZstdDecompressor().decompressobj()
    assert inflater.decompress((tmp_path / "job1" / names[0]).read_bytes())
    assert inflater.eof
    whole = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    assert len(whole.decompress((tmp_path / "job1" / names[0]).read_bytes())) > 4096
    assert _read(store, "job1") == written
    assert (tmp_path / "job1" / INDEX).exists()


def test_filters_since_until_stream(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, segment_bytes=2048, level=1)
    written = _fill(store, "j", 10)
    got = _read(store, "j", LogFilter(since_ns=50_000, until_ns=120_000))
    assert got == [r for r in written if 50_000 <= r.timestamp_ns <= 120_000]
    got = _read(store, "j", LogFilter(kinds=frozenset({2})))
    assert got == [r for r in written if r.kind == 2]
    assert len(got) == 50


@pytest.mark.parametrize("tail", [1, 7, 45, 150, 500])
def test_tail_last_lines(tmp_path: Path, tail: int) -> None:
    store = HistoryStore(tmp_path, segment_bytes=2048, level=1)
    written = _fill(store, "j", 10)
    got = _read(store, "j", LogFilter(tail=tail))
    assert got == written[-tail:]
    only_err = _read(store, "j", LogFilter(tail=3, kinds=frozenset({2})))
    assert only_err == [r for r in written if r.kind == 2][-3:]


def test_replayed_batches_are_skipped_after_reopen(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, segment_bytes=1 << 20, level=1)
    written = _fill(store, "j", 3)
    store.close()
    again = HistoryStore(tmp_path, segment_bytes=1 << 20, level=1)  # like a restart
    assert not again.append("j", [Record(1, 1, b"dup\n")], Marker("s", 3))
    assert again.append("j", [Record(1, 999_999, b"new\n")], Marker("s", 4))
    assert again.append("j", [Record(1, 999_999, b"other\n")], Marker("s2", 1))
    assert _read(again, "j") == [
        *written,
        Record(1, 999_999, b"new\n"),
        Record(1, 999_999, b"other\n"),
    ]


def test_unfinished_segment_is_recovered_without_index(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, segment_bytes=1 << 20, level=1)
    written = _fill(store, "j", 5)
    # no close(): the active segment has no frame end and is not in the index,
    # like after a SIGKILL
    assert not (tmp_path / "j" / INDEX).exists()
    fresh = HistoryStore(tmp_path, segment_bytes=1 << 20, level=1)
    assert _read(fresh, "j") == written
    assert not fresh.append("j", [Record(1, 1, b"dup")], Marker("s", 5))


def test_truncated_last_segment_serves_whole_records(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, segment_bytes=4096, level=1)
    written = _fill(store, "j", 10)
    store.seal("j")
    last = tmp_path / "j" / segment_files(tmp_path / "j")[-1]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    got = _read(store, "j")
    assert 0 < len(got) < len(written)
    assert got == written[: len(got)]


def test_corrupt_middle_segment_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = HistoryStore(tmp_path, segment_bytes=4096, level=1)
    written = _fill(store, "j", 20)
    store.seal("j")
    names = segment_files(tmp_path / "j")
    middle = tmp_path / "j" / names[len(names) // 2]
    data = bytearray(middle.read_bytes())
    for i in range(40, len(data) - 20, 7):
        data[i] ^= 0x5A
    middle.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        got = _read(store, "j")
    assert "damaged segment" in caplog.text and middle.name in caplog.text
    assert got[0] == written[0] and got[-1] == written[-1]
    assert len(got) < len(written)
    assert all(r in written for r in got)


def test_delete_and_bad_ids(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, segment_bytes=4096, level=1)
    _fill(store, "j", 2)
    assert store.delete("j")
    assert store.snapshot("j") is None
    assert not (tmp_path / "j").exists()
    assert not store.delete("j")
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(InvalidArgument):
            store.append(bad, [], Marker("s", 1))


def test_active_segment_with_large_writes_reads_to_its_end(tmp_path: Path) -> None:
    # Incompressible writes larger than the first read steps, in a frame that
    # is not finished (the active segment): every record must come back.
    store = HistoryStore(tmp_path, segment_bytes=64 << 20, level=1)
    rng = random.Random(3)
    written = [Record(1, i, rng.randbytes(70_000)) for i in range(12)]
    for seq, record in enumerate(written, 1):
        assert store.append("j", [record], Marker("s", seq))
    assert _read(store, "j") == written
    store.close()
    assert _read(HistoryStore(tmp_path, segment_bytes=64 << 20, level=1), "j") == written


def test_batches_sharing_one_marker(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, segment_bytes=1 << 20, level=1)
    batches = [PackedBatch.of_records(seq, [Record(1, seq, b"b%d\n" % seq)]) for seq in (3, 5, 9)]
    assert store.append_packed("j", "s", batches) == 3
    # a replay from seq 5 on: 5 and 9 are stored already, 11 is new
    replay = [*batches[1:], PackedBatch.of_records(11, [Record(2, 11, b"b11\n")])]
    assert store.append_packed("j", "s", replay) == 1
    assert store.append_packed("j", "other", replay[:1]) == 1  # another sender
    got = _read(store, "j")
    assert [r.data for r in got] == [b"b3\n", b"b5\n", b"b9\n", b"b11\n", b"b5\n"]
    snap = store.snapshot("j")
    assert snap is not None
    info = snap.segments[-1]
    assert (info.records, info.first_ts, info.last_ts) == (5, 3, 11)
    assert (info.session, info.last_seq) == ("other", 5)


def test_index_of_an_older_version_still_loads(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, segment_bytes=4096, level=1)
    written = _fill(store, "j", 10)
    store.seal("j")
    index = json.loads((tmp_path / "j" / INDEX).read_text())
    for info in index["segments"]:
        info["lines"] = [0, 5, 2, 0]  # kept by older versions
    (tmp_path / "j" / INDEX).write_text(json.dumps(index))
    fresh = HistoryStore(tmp_path, segment_bytes=4096, level=1)
    assert _read(fresh, "j") == written
    assert _read(fresh, "j", LogFilter(tail=3)) == written[-3:]


def _old_layout_segment(path: Path, batches: list[list[Record]], *, finished: bool) -> None:
    """A segment as earlier versions wrote it: one streamed frame, flushed
    after each batch, ended only when the segment was finished."""
    stream = zstandard.ZstdCompressor(level=1, write_checksum=True).compressobj()
    out = b""
    for seq, records in enumerate(batches, 1):
        out += stream.compress(encode_batch(records, Marker("old", seq)))
        out += stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    if finished:
        out += stream.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
    path.write_bytes(out)


def test_segments_of_the_older_layout_are_read(tmp_path: Path) -> None:
    rng = random.Random(5)
    batches = [
        [Record(1 + i % 2, seq * 10 + i, rng.randbytes(30_000)) for i in range(3)]
        for seq in range(6)
    ]
    job = tmp_path / "j"
    job.mkdir()
    _old_layout_segment(job / "seg-00000001.zst", batches[:3], finished=True)
    _old_layout_segment(job / "seg-00000002.zst", batches[3:], finished=False)
    store = HistoryStore(tmp_path, segment_bytes=1 << 20, level=1)
    assert _read(store, "j") == [r for batch in batches for r in batch]
    # the sender's marker is recovered from the older layout too
    assert not store.append("j", [Record(1, 1, b"dup")], Marker("old", 3))
    assert store.append("j", [Record(1, 99, b"new")], Marker("old", 4))
    assert _read(store, "j")[-1] == Record(1, 99, b"new")


def test_a_second_seal_leaves_the_index_alone_and_a_later_write_seals_again(
    tmp_path: Path,
) -> None:
    """A job's end seals its metric history twice (after the final sample,
    then with its log): the second neither loads nor rewrites the index. A
    write after a seal (a requeued job's next run) makes the next seal real,
    and so does a history deleted and written again."""
    store = HistoryStore(tmp_path, segment_bytes=1 << 20, level=1)
    index = tmp_path / "job1" / INDEX
    first = _fill(store, "job1", 2)
    store.seal("job1")
    written = index.stat()
    store.seal("job1")
    again = index.stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert json.loads(index.read_text())["sealed"] is True

    later = [Record(1, 10**9, b"after the seal\n")]
    assert store.append("job1", later, Marker("s2", 1))
    store.seal("job1")
    assert len(json.loads(index.read_text())["segments"]) == 2
    assert _read(store, "job1") == first + later

    store.delete("job1")
    assert store.append("job1", later, Marker("s3", 1))
    store.seal("job1")
    fresh = json.loads(index.read_text())
    assert fresh["sealed"] is True and len(fresh["segments"]) == 1
    assert _read(store, "job1") == later
