"""When a scheduled job should start: relative durations and RFC3339 times.

The contract's `schedule` field is either a relative duration ("30s", "5m",
"1h30m", "2h", "1d") counted from the moment the request arrives, or an RFC3339
time ("2026-01-02T15:04:05Z", "2026-01-02T17:04:05+02:00", fractional seconds
allowed). Empty means "not scheduled". Times are unix seconds (float).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

from joblet.errors import InvalidArgument

NOT_SCHEDULED = 0.0

# Far enough for any real use, near enough that the result still formats as a
# four-digit year; a typo like "99999999d" gets a clear refusal instead.
MAX_RELATIVE_S = 3650 * 86400

# Units largest first, each at most once: "1h30m" but not "30m1h" or "5m5m".
_RELATIVE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNIT_S = (86400, 3600, 60, 1)

# RFC 3339 section 5.6, with the lower-case and space separators its notes allow.
# A zone is required: a time without one is ambiguous between client and server.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")

_HINT = (
    'use a duration like "30s", "5m", "1h30m", "1d" or an RFC3339 time like "2026-01-02T15:04:05Z"'
)


def parse_schedule(text: str, now: float) -> float:
    """The unix time a job scheduled with `text` should start, or 0.0 when
    `text` is empty. Raises InvalidArgument for bad syntax, a zero duration,
    or a time already in the past."""
    text = text.strip()
    if not text:
        return NOT_SCHEDULED
    seconds = _relative_seconds(text)
    if seconds is not None:
        return now + seconds
    if _RFC3339.fullmatch(text):
        return _absolute(text, now)
    raise InvalidArgument(f"schedule {text!r} is not understood: {_HINT}")


# Clients repeat the same few durations ("1h", "30s"): parse each once.
@functools.lru_cache(maxsize=256)
def _relative_seconds(text: str) -> int | None:
    """Seconds of a relative duration, or None when `text` is not one."""
    match = _RELATIVE.fullmatch(text)
    if match is None:
        return None
    seconds = sum(
        int(part) * unit for part, unit in zip(match.groups(), _UNIT_S, strict=True) if part
    )
    if seconds <= 0:
        raise InvalidArgument(f"schedule {text!r} must be a duration greater than zero")
    if seconds > MAX_RELATIVE_S:
        raise InvalidArgument(f"schedule {text!r} is too far ahead: at most 3650d")
    return seconds


def _absolute(text: str, now: float) -> float:
    # fromisoformat (3.11) reads "Z", offsets and any number of fraction digits;
    # the regex above has already refused the ISO 8601 forms RFC3339 lacks.
    normalised = text[:10] + "T" + text[11:]
    if normalised.endswith(("z", "Z")):
        normalised = normalised[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(normalised).timestamp()
    except ValueError as exc:
        raise InvalidArgument(f"schedule {text!r} is not a valid time: {exc}") from exc
    if at < now:
        raise InvalidArgument(
            f"schedule {text!r} is in the past (the server's time is {format_rfc3339(now)})"
        )
    return at


def format_rfc3339(ts: float) -> str:
    """Unix seconds as an RFC3339 UTC time with a "Z" ("" for 0, meaning unset).
    Whole seconds, like the reference's Go `time.RFC3339` layout."""
    if ts == 0:
        return ""
    return _format_whole_seconds(int(ts // 1))


# Responses and listings format the same recent seconds over and over.
@functools.lru_cache(maxsize=4096)
def _format_whole_seconds(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
