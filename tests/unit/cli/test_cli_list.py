"""`rnx list`: filters, order, the 80-column table, ids only, chosen fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import Rnx

from joblet.api import joblet_pb2 as pb
from joblet.cli.job_list import (
    JobFilter,
    cut,
    format_rows,
    from_pages,
    page_request,
    parse_fields,
    render_list,
    select_jobs,
    since_time,
)

NOW = datetime(2024, 5, 1, 10, 5, 0, tzinfo=UTC)
LONG = "python3 -c 'import time; [print(i) for i in range(10**6)]' --verbose " * 3


def _job(uuid: str, status: str, start: str = "", **kw: object) -> pb.Job:
    return pb.Job(uuid=uuid, status=status, startTime=start, **kw)  # type: ignore[arg-type]


JOBS = [
    _job("aaaaaaaa-1", "COMPLETED", "2024-05-01T10:00:00Z", name="web-1", command="a"),
    _job("bbbbbbbb-2", "RUNNING", "2024-05-01T10:04:00Z", name="web-2", command="b"),
    _job("cccccccc-3", "QUEUED", name="batch", command="c"),
    _job("dddddddd-4", "FAILED", "2024-04-30T10:00:00Z", command="d"),
    _job(
        "eeeeeeee-5",
        "SCHEDULED",
        scheduledTime="2024-05-01T11:35:00Z",
        command="sh",
        args=["-c", LONG],
    ),
]


def _ids(jobs: list[pb.Job]) -> list[str]:
    return [job.uuid[0] for job in jobs]


def test_newest_first_with_waiting_jobs_on_top() -> None:
    assert _ids(select_jobs(JOBS, JobFilter())) == ["c", "e", "b", "a", "d"]


def test_filters_combine() -> None:
    assert _ids(select_jobs(JOBS, JobFilter(statuses=frozenset({"RUNNING", "FAILED"})))) == [
        "b",
        "d",
    ]
    assert _ids(select_jobs(JOBS, JobFilter(name="web-*"))) == ["b", "a"]
    since = since_time("1h", NOW)
    assert _ids(select_jobs(JOBS, JobFilter(since=since))) == ["c", "e", "b", "a"]
    assert _ids(select_jobs(JOBS, JobFilter(limit=2))) == ["c", "e"]


def test_since_takes_durations_and_times() -> None:
    assert since_time("10m", NOW) == NOW - timedelta(minutes=10)
    assert since_time("2024-05-01T09:00:00Z", NOW) == datetime(2024, 5, 1, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="RFC 3339"):
        since_time("yesterday", NOW)


def test_the_table_fits_80_columns_and_shows_when_scheduled_jobs_run() -> None:
    table = render_list(select_jobs(JOBS, JobFilter()), NOW, 80, UTC)
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines), table
    assert lines[0].split() == ["ID", "NAME", "STATUS", "STARTED", "DURATION", "COMMAND"]
    scheduled = next(line for line in lines if line.startswith("eeeeeeee "))
    assert "in 1h30m00s" in scheduled and scheduled.endswith("…")
    assert "eeeeeeee-5" not in table  # short ids
    full = render_list(JOBS, NOW, 80, UTC, full=True)
    assert "eeeeeeee-5" in full and LONG.strip()[-10:] in full


def test_cut_keeps_one_line() -> None:
    assert cut("a\nb", 10) == "a\\nb"
    assert cut("abcdef", 4) == "abc…"


def test_format_fields() -> None:
    assert parse_fields("id, status") == ["id", "status"]
    with pytest.raises(ValueError, match="unknown field bogus: use id, name"):
        parse_fields("id,bogus")
    assert format_rows(JOBS[:2], ["id", "name", "exit_code"]) == (
        "aaaaaaaa-1\tweb-1\t0\nbbbbbbbb-2\tweb-2\t0"
    )


def test_the_node_gets_the_filters_and_a_glob_is_finished_here() -> None:
    since = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    wanted = JobFilter(frozenset({"RUNNING", "FAILED"}), "web*", since, 100)
    request = page_request(wanted)
    assert list(request.statuses) == ["FAILED", "RUNNING"]
    assert (request.namePrefix, request.createdSince, request.limit) == (
        "web",
        "2024-05-01T10:00:00Z",
        100,
    )
    # A glob past its prefix (or an exact name): the node cannot count.
    assert page_request(JobFilter(name="w?b-*", limit=5)).limit == 0
    assert page_request(JobFilter(name="web-1", limit=5)).namePrefix == "web-1"
    pages = [pb.JobPage(jobs=JOBS[:3]), pb.JobPage(jobs=JOBS[3:], more=False)]
    assert from_pages(pages, JobFilter(name="web-1", limit=5)) == ([JOBS[0]], False)
    assert from_pages(pages, JobFilter(name="*", limit=2)) == (JOBS[:2], True)
    assert from_pages([pb.JobPage(jobs=JOBS[:1], more=True)], JobFilter()) == (JOBS[:1], True)


def test_a_node_without_pages_is_listed_through_list_jobs_with_its_note(rnx: Rnx) -> None:
    for n in range(3):
        rnx("run", "--name", f"j{n}", "true")
    code, out, err = rnx("list", "-q")
    assert code == 0 and len(out.split()) == 3 and err == ""
    rnx.service.omitted = 4000
    code, out, err = rnx("list", "-q", "--limit", "2")
    assert code == 0 and len(out.split()) == 2
    assert err == (
        "rnx: 4000 older finished job(s) left out: the node's list is capped at 3 MiB"
        " (rnx status ID shows any of them)\n"
    )
