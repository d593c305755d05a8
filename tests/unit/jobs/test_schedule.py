from __future__ import annotations

from datetime import UTC, datetime

import pytest

from joblet.errors import InvalidArgument
from joblet.jobs.schedule import format_rfc3339, parse_schedule

NOW = datetime(2026, 1, 2, 15, 4, 5, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1d2h3m4s", 86400 + 7200 + 180 + 4),
        ("90s", 90),
        ("  5m  ", 300),
        ("3650d", 3650 * 86400),
    ],
)
def test_relative_durations_count_from_now(text: str, offset: int) -> None:
    assert parse_schedule(text, NOW) == NOW + offset


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_means_not_scheduled(text: str) -> None:
    assert parse_schedule(text, NOW) == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T16:00:00Z", datetime(2026, 1, 2, 16, tzinfo=UTC)),
        ("2026-01-02t16:00:00z", datetime(2026, 1, 2, 16, tzinfo=UTC)),
        ("2026-01-02 16:00:00Z", datetime(2026, 1, 2, 16, tzinfo=UTC)),
        ("2026-01-02T18:00:00+02:00", datetime(2026, 1, 2, 16, tzinfo=UTC)),
        ("2026-01-02T11:00:00-05:00", datetime(2026, 1, 2, 16, tzinfo=UTC)),
        ("2026-01-02T16:00:00.250Z", datetime(2026, 1, 2, 16, 0, 0, 250000, tzinfo=UTC)),
        ("2026-01-02T16:00:00.123456789Z", datetime(2026, 1, 2, 16, 0, 0, 123456, tzinfo=UTC)),
        ("2026-01-02T15:04:05Z", datetime(2026, 1, 2, 15, 4, 5, tzinfo=UTC)),  # exactly now
    ],
)
def test_rfc3339_times(text: str, expected: datetime) -> None:
    assert parse_schedule(text, NOW) == pytest.approx(expected.timestamp(), abs=1e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0s", "greater than zero"),
        ("0h0m", "greater than zero"),
        ("3651d", "too far ahead"),
        ("30", "not understood"),
        ("30x", "not understood"),
        ("30m1h", "not understood"),
        ("5m5m", "not understood"),
        ("-5m", "not understood"),
        ("1.5h", "not understood"),
        ("tomorrow", "not understood"),
        ("2026-01-02", "not understood"),
        ("2026-01-02T16:00:00", "not understood"),  # no zone
        ("20260102T160000Z", "not understood"),
        ("2026-13-02T16:00:00Z", "not a valid time"),
        ("2026-01-02T16:00:00+25:00", "not a valid time"),
        ("2026-01-02T16:00:00Z x", "not understood"),
        ("2026-01-02T15:04:04Z", "in the past (the server's time is 2026-01-02T15:04:05Z)"),
        ("2020-01-01T00:00:00Z", "in the past"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match="schedule") as info:
        parse_schedule(text, NOW)
    assert message in str(info.value)


def test_refusal_gives_examples() -> None:
    with pytest.raises(InvalidArgument, match=r'"1h30m".*RFC3339'):
        parse_schedule("soon", NOW)


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (0.0, ""),
        (NOW, "2026-01-02T15:04:05Z"),
        (NOW + 0.999, "2026-01-02T15:04:05Z"),
        (1.0, "1970-01-01T00:00:01Z"),
    ],
)
def test_format_rfc3339(ts: float, text: str) -> None:
    assert format_rfc3339(ts) == text


def test_format_round_trips_through_parse() -> None:
    at = NOW + 3600
    assert parse_schedule(format_rfc3339(at), NOW) == at


def test_repeated_durations_give_the_same_answer_and_refusals_repeat() -> None:
    assert parse_schedule("1h", 100.0) == 3700.0
    assert parse_schedule(" 1h ", 200.0) == 3800.0  # remembered seconds, counted from each now
    for _ in range(2):
        with pytest.raises(InvalidArgument, match="greater than zero"):
            parse_schedule("0s", 100.0)


def test_format_rfc3339_of_the_same_second_is_stable() -> None:
    assert format_rfc3339(1700000000.2) == format_rfc3339(1700000000.9) == "2023-11-14T22:13:20Z"
