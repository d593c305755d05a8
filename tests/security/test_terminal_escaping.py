"""What rnx prints cannot drive the terminal: the pure escaping functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.cli.job_list import render_list
from joblet.cli.job_view import render_status
from joblet.cli.output import format_table
from joblet.cli.terminal import LogFilter, escape_field, escape_text, neutralize_log_text

OSC52 = "\x1b]52;c;aGk=\x07"
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def _has_control(text: str) -> bool:
    return any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in text)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\x1bb", "a\\x1bb"),
        ("bell\x07", "bell\\x07"),
        ("\x9b2J", "\\u009b2J"),  # C1 CSI as a code point
        ("del\x7f", "del\\x7f"),
        ("two\nlines\tand\rcr", "two\\nlines\\tand\\rcr"),
        ("plain ünïcode", "plain ünïcode"),
    ],
)
def test_escape_field(raw: str, shown: str) -> None:
    assert escape_field(raw) == shown


def test_escape_text_keeps_newlines_only() -> None:
    assert escape_text("a\x1b[2J\nb\x07") == "a\\x1b[2J\nb\\x07"


def test_table_cells_are_one_line_without_controls() -> None:
    table = format_table(["A", "B"], [["x\ny", OSC52]])
    assert table.count("\n") == 1 and not _has_control(table)
    assert "\\x1b]52;c;aGk=\\x07" in table


def test_status_and_list_escape_every_field() -> None:
    status = pb.GetJobStatusRes(
        uuid="id\x1b", name="n\x1b]0;t\x07", status="COMPLETED", command="echo",
        args=[OSC52, "a\nStatus: FAKE"], environment={"K": "v\x1b[2J"}, network="n\x9b",
        volumes=["v\x07"], endReason="r\x1b", workDir="/w\x1b", nodeId="x\x07",
    )  # fmt: skip
    lines = render_status(status, NOW)
    assert not any(_has_control(line) or "\n" in line for line in lines)
    assert "Status: FAKE" not in [line for line in lines if line.startswith("Status")]
    job = pb.Job(uuid="u", name="n\x1b", status="RUNNING", command="sh", args=[OSC52])
    table = render_list([job], NOW, full=True)
    assert not _has_control(table) and "\\x1b]52" in table
    table = render_list([job], NOW)  # cut to 80 columns
    assert not _has_control(table) and "\\x1b]52" in table


def test_log_text_keeps_colours_and_escapes_the_rest() -> None:
    red = "\x1b[31mred\x1b[0m \x1b[1;38;5;208mbold\x1b[m"
    assert neutralize_log_text(red) == red
    assert neutralize_log_text("a\r\n\tb\n") == "a\r\n\tb\n"
    assert neutralize_log_text(OSC52) == "\\x1b]52;c;aGk=\\x07"
    assert neutralize_log_text("\x1b[2J\x1b[?1049h") == "\\x1b[2J\\x1b[?1049h"
    assert neutralize_log_text("\x1bPq\x1b\\\x08") == "\\x1bPq\\x1b\\\\x08"
    assert neutralize_log_text("\u009b31m") == "\\u009b31m"


def test_log_filter_across_chunk_boundaries() -> None:
    data = "é \x1b[31mred\x1b[0m\x1b]52;c;aGk=\x07\n".encode() + b"\x9b\xff"
    whole = LogFilter()
    expected = whole.feed(data) + whole.finish()
    assert expected == "é \x1b[31mred\x1b[0m\\x1b]52;c;aGk=\\x07\n".encode() + b"\\x9b\xff"
    for size in (1, 2, 3, 5):
        pieces = LogFilter()
        out = b"".join(pieces.feed(data[i : i + size]) for i in range(0, len(data), size))
        assert out + pieces.finish() == expected


def test_log_filter_releases_a_dangling_escape_at_the_end() -> None:
    log_filter = LogFilter()
    assert log_filter.feed(b"x\x1b[3") == b"x"
    assert log_filter.finish() == b"\\x1b[3"
