"""Sizes, durations, schedules and env entries as typed on rnx's command line."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone

import pytest

from joblet.cli.job_args import key_value, read_env_file, resolve_env
from joblet.cli.units import memory_mb, parse_bytes, parse_seconds, schedule_text, whole_seconds
from joblet.client.errors import CliError


@pytest.mark.parametrize(
    ("text", "mb"),
    [("512", 512), ("512M", 512), ("512m", 512), ("512MiB", 512), ("2G", 2048), ("1.5g", 1536)],
)
def test_memory_sizes_with_units(text: str, mb: int) -> None:
    assert memory_mb(text) == mb


def test_a_size_below_a_mebibyte_rounds_up_and_nonsense_is_refused() -> None:
    assert memory_mb("1K") == 1
    assert parse_bytes("64k") == 65536
    for bad in ("12X", "M", "-1", ""):
        with pytest.raises((argparse.ArgumentTypeError, ValueError)):
            memory_mb(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="too large"):
        memory_mb("3000T")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("10m", 600), ("1h30m", 5400), ("1hour", 3600), ("30min", 1800)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_seconds(text) == seconds
    assert whole_seconds(text) == seconds


def test_bad_durations_are_refused() -> None:
    for bad in ("", "10parsecs", "m10", "1h-"):
        with pytest.raises(ValueError, match="not understood"):
            parse_seconds(bad)


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PLUS2 = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("30s", "30s"),
        ("1hour", "1h"),
        ("90min", "1h30m"),
        ("2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z"),
        ("2026-03-02 10:00", "2026-03-02T10:00:00+02:00"),
        ("15:30", "2026-03-01T15:30:00+02:00"),  # later today (14:00 local now)
        ("13:00", "2026-03-02T13:00:00+02:00"),  # already past: tomorrow
    ],
)
def test_schedule_forms(text: str, sent: str) -> None:
    assert schedule_text(text, NOW, PLUS2) == sent


def test_an_unknown_schedule_names_the_forms() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="local time"):
        schedule_text("next tuesday", NOW, PLUS2)


def test_env_entries_from_the_caller_and_from_files(tmp_path: object) -> None:
    assert key_value("A") == ("A", None)
    assert resolve_env([("A", None), ("B", "2")], {"A": "1"}, "-e") == {"A": "1", "B": "2"}
    with pytest.raises(CliError, match="C is not set"):
        resolve_env([("C", None)], {}, "-e")
    assert isinstance(tmp_path, __import__("pathlib").Path)
    path = tmp_path / "env"
    path.write_text("# comment\n\nA=1\nexport B=x=y\nHOME\n")
    assert read_env_file(str(path)) == [("A", "1"), ("B", "x=y"), ("HOME", None)]
    path.write_text("A=1\n2BAD=3\n")
    with pytest.raises(CliError, match=r"env:2: invalid variable name"):
        read_env_file(str(path))
    with pytest.raises(CliError, match="cannot read env file"):
        read_env_file(str(tmp_path / "missing"))
