"""Ending a log whose writer died: a record cut short goes, one note is added."""

from __future__ import annotations

from pathlib import Path

from joblet.logs.format import Stream, decode_records, encode_record
from joblet.logs.seal import seal

NOTE = b"launcher lost\n"


def test_seal_cuts_a_partial_record_and_appends_the_note(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    whole = encode_record(Stream.STDOUT, 1, b"tick\n") + encode_record(Stream.STDERR, 2, b"err\n")
    log.write_bytes(whole + encode_record(Stream.STDOUT, 3, b"cut short\n")[:-4])
    seal(str(log), NOTE)
    records, used = decode_records(log.read_bytes())
    assert used == log.stat().st_size
    assert [(r.stream, r.data) for r in records] == [
        (Stream.STDOUT, b"tick\n"),
        (Stream.STDERR, b"err\n"),
        (Stream.SYSTEM, NOTE),
    ]


def test_seal_of_a_whole_log_only_appends(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    log.write_bytes(encode_record(Stream.STDOUT, 1, b"done\n"))
    seal(str(log), NOTE)
    records, _ = decode_records(log.read_bytes())
    assert [r.data for r in records] == [b"done\n", NOTE]


def test_seal_of_a_header_cut_short_and_of_a_missing_file(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    log.write_bytes(encode_record(Stream.STDOUT, 1, b"x\n")[:5])
    seal(str(log), NOTE)
    assert [r.data for r in decode_records(log.read_bytes())[0]] == [NOTE]
    seal(str(tmp_path / "gone.log"), NOTE)  # already copied to persist: nothing to do
    assert not (tmp_path / "gone.log").exists()
