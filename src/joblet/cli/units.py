"""Sizes, durations and schedules as people type them on rnx's command line,
turned into what the API carries. Pure functions (argparse types raise
`ArgumentTypeError`, which argparse reports as one usage line)."""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta, tzinfo

_INT32_MAX = 2**31 - 1

# Memory sizes are binary, as docker's are: "512m" = 512 MiB.
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_SIZE_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)
_DURATION_WORDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}

_LOCAL_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2}(?::\d{2})?)")
_CLOCK = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")
_ZONED = re.compile(r".*\d(?:[Zz]|[+-]\d{2}:\d{2})")


def parse_bytes(text: str) -> int:
    """'512M', '1.5GiB', '64k' -> bytes (binary units); a bare number is bytes."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"size {text!r} is not understood: use e.g. 512M, 1G, 64K")
    return int(float(match.group(1)) * (1 << _SIZE_SHIFT[match.group(2).lower()]))


def parse_seconds(text: str) -> float:
    """'90' (seconds), '30s', '10m', '1h30m', '1hour', '30min' -> seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        unit = _DURATION_WORDS.get(match.group(2).lower())
        if match.start() != pos or unit is None:
            break
        total += float(match.group(1)) * unit
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"duration {text!r} is not understood: use e.g. 30s, 10m, 1h30m")
    return total


def _int32(value: int, what: str) -> int:
    if not 0 <= value <= _INT32_MAX:
        raise argparse.ArgumentTypeError(f"{what} is too large")
    return value


def memory_mb(text: str) -> int:
    """argparse type for --max-memory/--gpu-memory: a bare number is MB (as
    before), else a size with a unit ('512M', '8G'), rounded up to whole MiB."""
    if text.strip().isdigit():
        return _int32(int(text), f"{text} MB")
    try:
        size = parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return _int32(-(-size // (1 << 20)), f"size {text!r}")


def gpu_ids(text: str) -> tuple[str, ...]:
    """argparse type for --gpu-ids: "0,2" or "GPU-aaa,GPU-bbb"."""
    ids = tuple(part.strip() for part in text.split(","))
    if not all(ids):
        raise argparse.ArgumentTypeError(f"{text!r}: give GPU indices or UUIDs separated by commas")
    return ids


def bytes_per_second(text: str) -> int:
    """argparse type for --max-iobps: bytes per second, units allowed ('10M')."""
    try:
        return _int32(parse_bytes(text), f"rate {text!r}")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def whole_seconds(text: str) -> int:
    """argparse type for durations the API takes in whole seconds ('30s', '10m')."""
    try:
        seconds = parse_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return _int32(round(seconds), f"duration {text!r}")


grace_seconds = whole_seconds


def schedule_text(text: str, now: datetime, tz: tzinfo | None = None) -> str:
    """What `--schedule` sends: a duration in the daemon's form ('1h30m'), an
    RFC 3339 time as given, or a local time ('2026-01-02 15:04', '15:04' =
    its next occurrence) made RFC 3339 with the local offset."""
    text = text.strip()
    if not text or _ZONED.fullmatch(text):
        return text
    local = now.astimezone(tz)
    match = _LOCAL_TIME.fullmatch(text)
    if match is not None:
        at = _local(f"{match.group(1)} {match.group(2)}", tz)
        return at.isoformat()
    if _CLOCK.fullmatch(text):
        at = _local(f"{local.date().isoformat()} {text}", tz)
        if at <= local:
            at += timedelta(days=1)
        return at.isoformat()
    try:
        seconds = int(parse_seconds(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"schedule {text!r} is not understood: use a duration (30s, 10m, 1hour),"
            " a local time (15:04, 2026-01-02 15:04) or an RFC 3339 time"
        ) from None
    return _compact_duration(seconds)


def _local(text: str, tz: tzinfo | None) -> datetime:
    try:
        naive = datetime.fromisoformat(text if text.count(":") == 2 else text + ":00")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"schedule {text!r}: {exc}") from None
    # Without `tz`, the system's rules: the offset of that day, DST included.
    return naive.astimezone() if tz is None else naive.replace(tzinfo=tz)


def _compact_duration(seconds: int) -> str:
    """90 -> '1m30s', the form the daemon parses (units largest first)."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
