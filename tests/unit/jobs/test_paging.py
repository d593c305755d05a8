"""The paged listing's filters, order and cursor (pure)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from joblet.errors import InvalidArgument
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.paging import (
    PageQuery,
    decode_cursor,
    encode_cursor,
    key_of,
    ordered,
    page_size,
    parse_statuses,
    parse_time,
)


def job(n: int, status: JobStatus = JobStatus.COMPLETED, name: str = "", wf: str = "") -> Job:
    spec = JobSpec(command="true", name=name, workflow_uuid=wf)
    return Job(id=f"{n:08x}-aaaa", spec=spec, status=status, node_id="n1", created_at=100.0 + n)


def test_newest_first_and_a_cursor_goes_on_after_its_job() -> None:
    jobs = [job(n) for n in range(10)]
    keys = ordered(jobs, PageQuery())
    assert [k[1] for k in keys] == [j.id for j in reversed(jobs)]
    after = decode_cursor(encode_cursor(keys[3]))
    assert after == keys[3]
    rest = ordered(jobs, PageQuery(after=after))
    assert rest == keys[4:]
    # A job added later is newer than the cursor: never in the rest.
    assert ordered([*jobs, job(50)], PageQuery(after=after)) == keys[4:]


def test_every_filter() -> None:
    jobs = [
        job(1, JobStatus.RUNNING, "web-1"),
        job(2, JobStatus.FAILED, "web-2", wf="w1"),
        job(3, JobStatus.COMPLETED, "db"),
    ]
    ids = lambda q: [k[1] for k in ordered(jobs, q)]  # noqa: E731
    failed_or_running = parse_statuses(["failed", "RUNNING"])
    assert ids(PageQuery(statuses=failed_or_running)) == [jobs[1].id, jobs[0].id]
    assert ids(PageQuery(name_prefix="web")) == [jobs[1].id, jobs[0].id]
    assert ids(PageQuery(id_prefix="00000003")) == [jobs[2].id]
    assert ids(PageQuery(workflow="w1")) == [jobs[1].id]
    assert ids(PageQuery(since=102.0)) == [jobs[2].id, jobs[1].id]
    assert ids(PageQuery(until=102.0)) == [jobs[0].id]
    assert ids(PageQuery(node_id="n2")) == []


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(InvalidArgument, match="status 'DONE' is not a job status"):
        parse_statuses(["DONE"])
    with pytest.raises(InvalidArgument, match="cursor 'x' is not one a JobPage gave"):
        decode_cursor("x")
    with pytest.raises(InvalidArgument, match="needs a time zone"):
        parse_time("2026-01-01T00:00:00", "createdSince")
    with pytest.raises(InvalidArgument, match="pageSize must be >= 0"):
        page_size(-1)
    assert page_size(0) == 200 and page_size(5000) == 1000
    assert parse_time("1970-01-01T00:01:40Z", "x") == 100.0


def test_the_key_never_changes_with_the_status() -> None:
    assert key_of(job(1)) == key_of(job(1, JobStatus.RUNNING))


def test_since_and_until_name_an_instant_to_the_microsecond() -> None:
    at = 1_700_000_000.1234567  # more digits than RFC 3339 times carry here
    created = replace(job(1), created_at=at)
    written = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    since = parse_time(written, "createdSince")
    assert since is not None and since > at  # rounded up by the microsecond
    assert PageQuery(since=since).matches(created)
    assert not PageQuery(until=since).matches(created)


def test_any_instant_written_as_rfc3339_selects_its_job() -> None:
    # float arithmetic (at * 1e6) and datetime round a quarter of instants
    # differently: the filter must agree with what the wire carries.
    rng = random.Random(7)
    for _ in range(5000):
        at = 1_790_000_000 + rng.random() * 1000
        created = replace(job(1), created_at=at)
        written = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
        instant = parse_time(written, "createdSince")
        assert PageQuery(since=instant).matches(created), written
        assert not PageQuery(until=instant).matches(created), written
