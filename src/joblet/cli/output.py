"""Formatting shared by the rnx commands: times, durations, tables, JSON.

Pure functions on plain values; the only I/O helper is `write_bytes`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, TextIO

from joblet.cli.terminal import escape_field

if TYPE_CHECKING:
    from google.protobuf.message import Message

MISSING = "-"
LOCAL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_time(text: str) -> datetime | None:
    """An RFC3339 timestamp as an aware datetime; None when empty or unparseable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def format_local_time(text: str, tz: tzinfo | None = None) -> str:
    """An RFC3339 timestamp shown in local time (or `tz`); `-` when absent."""
    parsed = parse_time(text)
    if parsed is None:
        return escape_field(text) or MISSING
    return parsed.astimezone(tz).strftime(LOCAL_TIME_FORMAT)


def format_duration(seconds: float, subsecond: bool = False) -> str:
    """`3s`, `2m05s`, `1h01m02s`, `2d03h01m`; `<1s` under a second.

    `subsecond`: the times it came from carry fractions of a second, so short
    spans show them (`0.25s`, `12.3s`); whole-second times never claim them.
    """
    seconds = max(seconds, 0.0)
    if subsecond and seconds < 60:
        if seconds < 0.005:
            return "<0.01s"
        return f"{seconds:.2f}s" if seconds < 9.995 else f"{seconds:.1f}s"
    whole = int(seconds)
    if whole == 0:
        return "<1s"
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def job_duration(start: str, end: str, now: datetime) -> str:
    """How long a job ran (or has been running, if it has no end yet). Sub-second
    only when both times have fractions: `now` is precise, a whole-second start is not."""
    started = parse_time(start)
    if started is None:
        return MISSING
    ended = parse_time(end)
    subsecond = bool(started.microsecond) and ended is not None and bool(ended.microsecond)
    return format_duration(((ended or now) - started).total_seconds(), subsecond)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded.
    Control characters in cells are made visible: a cell is one line, and
    nothing in it reaches the terminal as a command."""
    rows = [[escape_field(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return "\n".join(line(row) for row in [list(headers), *rows])


def message_to_json(message: Message) -> str:
    """One line of rnx's JSON shape (`json_shape`, docs/json.md): every field,
    defaults included, in declaration order, one spelling per field; a script
    can rely on `exit_code` being present even when it is 0."""
    from joblet.cli.json_shape import to_plain

    return json.dumps(to_plain(message))


def log_chunk_json(data: bytes | memoryview) -> str:
    """One chunk of a job's output under --json: `{"data": TEXT}` (bytes that
    are not UTF-8 become U+FFFD; the plain output keeps them)."""
    return json.dumps({"data": bytes(data).decode("utf-8", errors="replace")})


def write_bytes(out: TextIO, data: bytes | memoryview) -> None:
    """Write raw bytes to a text stream's binary buffer and flush them."""
    out.flush()  # keep order with anything written as text before
    buffer = getattr(out, "buffer", None)
    if buffer is None:  # a stream without a binary layer (rare: an embedding host)
        out.write(bytes(data).decode("utf-8", errors="replace"))
        out.flush()
        return
    buffer.write(data)
    buffer.flush()
