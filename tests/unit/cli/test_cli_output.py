"""Formatting: durations, local times, tables, job renderings, JSON field names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.cli.job_view import job_exit_code, render_run, render_status
from joblet.cli.output import (
    format_duration,
    format_local_time,
    format_table,
    job_duration,
    message_to_json,
    parse_time,
)

PLUS2 = timezone(timedelta(hours=2))
NOW = datetime(2024, 5, 1, 10, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "<1s"),
        (0.9, "<1s"),
        (3, "3s"),
        (3.7, "3s"),
        (59, "59s"),
        (65, "1m05s"),
        (125, "2m05s"),
        (3599, "59m59s"),
        (3600 + 62, "1h01m02s"),
        (2 * 86400 + 3 * 3600 + 60, "2d03h01m"),
        (-3, "<1s"),
    ],
)
def test_format_duration_whole_seconds(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0042, "<0.01s"),
        (0.25, "0.25s"),
        (9.999, "10.0s"),
        (12.34, "12.3s"),
        (65.5, "1m05s"),
        (-3, "<0.01s"),
    ],
)
def test_format_duration_subsecond(seconds: float, text: str) -> None:
    assert format_duration(seconds, subsecond=True) == text


def test_local_time_conversion() -> None:
    assert format_local_time("2024-05-01T10:00:00Z", PLUS2) == "2024-05-01 12:00:00"
    assert format_local_time("2024-05-01T10:00:00.123456789Z"[:26] + "Z", PLUS2) == (
        "2024-05-01 12:00:00"
    )
    assert format_local_time("", PLUS2) == "-"
    assert format_local_time("garbage", PLUS2) == "garbage"  # shown as sent, never a crash


def test_local_time_uses_the_process_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert format_local_time("2024-01-15T17:30:00Z") == "2024-01-15 12:30:00"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_parse_time_rejects_naive_and_bad_input() -> None:
    assert parse_time("2024-05-01T10:00:00") is None
    assert parse_time("soon") is None
    assert parse_time("2024-05-01T10:00:00+02:00") == datetime(2024, 5, 1, 8, tzinfo=UTC)


def test_job_duration_running_and_finished() -> None:
    # Whole seconds on the wire: no invented fraction, `<1s` for a same-second end.
    assert job_duration("2024-05-01T10:00:00Z", "2024-05-01T10:00:03Z", NOW) == "3s"
    assert job_duration("2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z", NOW) == "<1s"
    assert job_duration("2024-05-01T10:00:00Z", "2024-05-01T10:02:05Z", NOW) == "2m05s"
    # One whole-second end of two: the fraction is not known either.
    assert job_duration("2024-05-01T10:00:00.5Z", "2024-05-01T10:00:01Z", NOW) == "<1s"
    # Both times carry fractions: they are shown.
    assert job_duration("2024-05-01T10:00:00.25Z", "2024-05-01T10:00:01.75Z", NOW) == "1.50s"
    assert job_duration("2024-05-01T10:00:00Z", "", NOW) == "5m00s"  # still running
    assert job_duration("", "", NOW) == "-"


def test_table_is_aligned() -> None:
    table = format_table(["A", "LONGER", "C"], [["xxxx", "y", "last col"], ["z", "", "q"]])
    assert table.splitlines() == [
        "A     LONGER  C",
        "xxxx  y       last col",
        "z             q",
    ]


def test_status_rendering() -> None:
    res = pb.GetJobStatusRes(
        uuid="u-1",
        name="build",
        command="sh",
        args=["-c", "exit 3"],
        status="FAILED",
        exitCode=3,
        startTime="2024-05-01T10:00:00Z",
        endTime="2024-05-01T10:01:05Z",
        maxCPU=50,
        maxMemory=128,
        environment={"B": "2", "A": "1"},
        secret_environment={"TOKEN": "leaked-if-shown"},
        endReason="exit code 3",
        volumes=["v1", "v2"],
    )
    lines = render_status(res, NOW, PLUS2)
    assert lines[:5] == [
        "Job ID: u-1",
        "Name: build",
        "Status: FAILED",
        "Exit Code: 3",
        "End Reason: exit code 3",
    ]
    assert "Command: sh -c 'exit 3'" in lines
    assert "Start Time: 2024-05-01 12:00:00" in lines
    assert "Duration: 1m05s" in lines
    assert "Limits: cpu 50%, memory 128 MB" in lines
    assert "Volumes: v1, v2" in lines
    env_at = lines.index("Environment:")
    assert lines[env_at + 1 : env_at + 3] == ["  A=1", "  B=2"]
    assert "  TOKEN=***" in lines
    assert not any("leaked" in line for line in lines)


def test_status_of_a_running_job_has_no_exit_code() -> None:
    lines = render_status(pb.GetJobStatusRes(uuid="u", status="RUNNING"), NOW)
    assert not any(line.startswith("Exit Code") for line in lines)
    assert "Limits: none" in lines


def test_run_rendering_key_lines() -> None:
    res = pb.RunJobResponse(
        jobUuid="u-2",
        status="SCHEDULED",
        command="echo",
        args=["a b"],
        scheduledTime="2024-05-01T11:00:00Z",
    )
    lines = render_run(res, PLUS2)
    assert lines[:3] == ["ID: u-2", "Status: SCHEDULED", "Command: echo 'a b'"]
    assert "Scheduled Time: 2024-05-01 13:00:00" in lines


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        ("COMPLETED", 0, 0),
        ("FAILED", 3, 3),
        ("FAILED", 0, 1),
        ("FAILED", 137, 137),
        ("STOPPED", 143, 143),
        ("CANCELED", 0, 1),
        ("FAILED", 300, 255),
        ("FAILED", -1, 1),
    ],
)
def test_follow_exit_code(status: str, code: int, expected: int) -> None:
    assert job_exit_code(status, code) == expected


def test_json_has_one_spelling_defaults_and_declaration_order() -> None:
    res = pb.GetJobStatusRes(
        uuid="u", secret_environment={"K": "***"}, maxCPU=5, maxIngressBitsPerSec=2**40
    )
    text = message_to_json(res)
    assert "\n" not in text
    doc = json.loads(text)
    assert list(doc)[:5] == ["id", "name", "command", "args", "max_cpu"]
    assert doc["max_cpu"] == 5 and doc["exit_code"] == 0
    assert doc["max_ingress_bits_per_sec"] == 2**40  # int64: a number, not a string
    assert doc["secret_environment"] == {"K": "***"}
    assert {"max_iobps", "gpu_memory_mb", "end_reason", "work_dir"} <= doc.keys()
    assert json.loads(message_to_json(pb.RunJobResponse(jobUuid="u")))["id"] == "u"
    assert json.loads(message_to_json(pb.DataChunk(payload=b"\xff\x00"))) == {"payload": "/wA="}
