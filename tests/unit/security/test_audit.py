"""Audit records, the rotating file they go to, and `joblet audit`'s filters."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.errors import ConfigError
from joblet.security.audit import (
    AuditRecord,
    from_json_line,
    object_id,
    rfc3339_now,
    short_message,
    should_record,
    to_json_line,
)
from joblet.security.audit_config import AuditConfig, parse_audit_config
from joblet.security.audit_log import RotatingLines, rotated_paths
from joblet.security.audit_query import (
    AuditFilter,
    parse_lines,
    parse_outcomes,
    read_records,
    render_table,
)

RUN = "/joblet.JobService/RunJob"


def _record(**fields: str) -> AuditRecord:
    base = {
        "time": "2026-03-01T12:00:00.000Z", "cn": "admin", "role": "admin",
        "peer": "ipv4:127.0.0.1:5000", "rpc": RUN, "object": "j1", "outcome": "OK",
    }  # fmt: skip
    return AuditRecord(**{**base, **fields})


def test_object_ids_come_from_the_request_or_the_response_never_more() -> None:
    request = pb.RunJobRequest(command="x", secret_environment={"K": "secret"})
    assert object_id(RUN, request, pb.RunJobResponse(jobUuid="j1")) == "j1"
    assert object_id(RUN, request, None) == ""  # refused: no response
    assert object_id("/joblet.JobService/StopJob", pb.StopJobReq(uuid="j2"), None) == "j2"
    assert (
        object_id("/joblet.VolumeService/RemoveVolume", pb.RemoveVolumeReq(name="v"), None) == "v"
    )
    assert (
        object_id("/joblet.NetworkService/CreateNetwork", pb.CreateNetworkReq(name="n"), None)
        == "n"
    )
    assert object_id("/joblet.JobService/DeleteAllJobs", pb.DeleteAllJobsReq(), None) == ""
    assert object_id("/joblet.JobService/StopJob", b"raw bytes", None) == ""


def test_mutating_calls_and_refusals_are_recorded_reads_are_not() -> None:
    assert should_record(RUN, "OK") and should_record(RUN, "INVALID_ARGUMENT")
    assert should_record("/joblet.VolumeService/CreateVolume", "OK")
    assert not should_record("/joblet.JobService/ListJobs", "OK")
    assert not should_record("/joblet.JobService/GetJobStatus", "NOT_FOUND")
    assert should_record("/joblet.JobService/ListJobs", "UNAUTHENTICATED")
    assert should_record("/joblet.JobService/ListJobs", "PERMISSION_DENIED")


def test_a_record_is_one_json_line_and_back() -> None:
    record = _record(outcome="PERMISSION_DENIED", message="role viewer may not call RunJob")
    line = to_json_line(record)
    assert "\n" not in line and from_json_line(line) == record
    assert '"message"' not in to_json_line(_record())
    with pytest.raises(ValueError):
        from_json_line("[1, 2]")
    assert (
        short_message("a\n b" + "x" * 500).startswith("a b")
        and len(short_message("x" * 500)) == 200
    )


def test_the_file_rotates_by_size_keeping_max_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    lines = RotatingLines(path, max_bytes=100, max_files=2)
    for n in range(12):
        lines.write(f"line {n:02d} " + "x" * 30)  # 39 bytes with the newline: 2 per file
    lines.close()
    files = rotated_paths(path, 2)
    assert [p.name for p in files] == ["audit.log.2", "audit.log.1", "audit.log"]
    kept = [[int(line.split()[1]) for line in p.read_text().splitlines()] for p in files]
    assert kept == [[6, 7], [8, 9], [10, 11]]
    assert all(p.stat().st_size <= 100 for p in files)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert not (tmp_path / "audit.log.3").exists()


def test_an_existing_file_is_made_private_and_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text("old\n")
    path.chmod(0o644)
    lines = RotatingLines(path, max_bytes=10_000, max_files=1)
    lines.write("new")
    lines.close()
    assert path.read_text() == "old\nnew\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_filters() -> None:
    records = [
        _record(time="2026-03-01T11:00:00.000Z"),
        _record(cn="viewer", role="viewer", outcome="PERMISSION_DENIED", object=""),
        _record(rpc="/joblet.JobService/StopJob", outcome="NOT_FOUND"),
        _record(cn="eve", outcome="UNAUTHENTICATED", rpc="/joblet.JobService/ListJobs"),
    ]

    def pick(wanted: AuditFilter) -> list[int]:
        return [i for i, record in enumerate(records) if wanted.matches(record)]

    assert pick(AuditFilter()) == [0, 1, 2, 3]
    assert pick(AuditFilter(cn="viewer")) == [1]
    assert (
        pick(AuditFilter(rpc="StopJob"))
        == pick(AuditFilter(rpc="/joblet.JobService/StopJob"))
        == [2]
    )
    assert pick(AuditFilter(outcomes=parse_outcomes(["denied"]))) == [1, 3]
    assert pick(AuditFilter(outcomes=parse_outcomes(["OK,not_found"]))) == [0, 2]
    assert pick(AuditFilter(since=datetime(2026, 3, 1, 11, 30, tzinfo=UTC))) == [1, 2, 3]
    with pytest.raises(ValueError, match="'MAYBE'"):
        parse_outcomes(["OK", "MAYBE"])


def test_reading_skips_what_is_not_a_record_and_escapes_the_table(tmp_path: Path) -> None:
    (tmp_path / "audit.log.1").write_text(to_json_line(_record(object="a")) + "\n")
    (tmp_path / "audit.log").write_text("garbage\n" + to_json_line(_record(cn="\x1b[2Jx")) + "\n")
    records, bad = read_records(rotated_paths(tmp_path / "audit.log", 5))
    assert [r.object for r in records] == ["a", "j1"] and bad == 1
    table = list(render_table(records))
    assert "\x1b" not in "".join(table) and "\\x1b[2Jx" in table[2]
    assert parse_lines(["", "{}"])[0] == [AuditRecord("", "", "", "", "", "", "", "")]


def test_the_audit_section() -> None:
    assert parse_audit_config(None) == AuditConfig()
    assert parse_audit_config({"enabled": False, "maxSize": "1MB", "maxFiles": 2}) == AuditConfig(
        False, 1_000_000, 2
    )
    for bad, says in (
        ({"enabled": "yes"}, "true or false"),
        ({"maxSize": "huge"}, "maxSize"),
        ({"maxSize": "1KB"}, "at least"),
        ({"maxFiles": -1}, "maxFiles"),
        ({"maxfiles": 1}, "unknown key"),
    ):
        with pytest.raises(ConfigError, match=says):
            parse_audit_config(bad)


def test_times_are_rfc3339_utc_with_milliseconds() -> None:
    stamp = 1_772_366_400.25  # 2026-03-01T12:00:00.25Z
    assert rfc3339_now(stamp) == "2026-03-01T12:00:00.250Z"
    now = datetime.fromisoformat(rfc3339_now().replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - now).total_seconds()) < 60
