"""The paged job listing (ListJobPages): its filters, its order and its
cursor. Pure code over job records.

Order is newest first by (created_at, id), a key no job ever changes, and a
cursor is the key of the last job sent: the next page holds the jobs whose
key comes after it. Jobs added later are newer than every cursor taken
before them, and a collected job only leaves a hole, so a listing never
shows a job twice nor skips one that is there throughout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

from joblet.errors import InvalidArgument
from joblet.jobs.model import Job, JobStatus

DEFAULT_PAGE = 200
MAX_PAGE = 1000
Key = tuple[float, str]


@dataclass(frozen=True)
class PageQuery:
    statuses: frozenset[JobStatus] = frozenset()
    name_prefix: str = ""
    id_prefix: str = ""
    workflow: str = ""
    since: float | None = None  # created at or after (unix seconds)
    until: float | None = None  # created before
    node_id: str = ""
    page_size: int = DEFAULT_PAGE
    limit: int = 0
    after: Key | None = None  # the cursor: only keys below it

    @property
    def unfiltered(self) -> bool:
        return not (
            self.statuses
            or self.name_prefix
            or self.id_prefix
            or self.workflow
            or self.node_id
            or self.since is not None
            or self.until is not None
        )

    def matches(self, job: Job) -> bool:
        if self.statuses and job.status not in self.statuses:
            return False
        if not job.id.startswith(self.id_prefix) or not job.spec.name.startswith(self.name_prefix):
            return False
        if self.workflow and job.spec.workflow_uuid != self.workflow:
            return False
        if self.node_id and job.node_id != self.node_id:
            return False
        # Times travel as RFC 3339 with microseconds at most: a job created
        # at the instant a caller names is "at" it, whatever digits follow.
        if self.since is None and self.until is None:
            return True
        created = _micros(job.created_at)
        if self._since_us is not None and created < self._since_us:
            return False
        return self._until_us is None or created < self._until_us

    # The bounds in microseconds, once per query rather than once per job.
    @cached_property
    def _since_us(self) -> int | None:
        return None if self.since is None else _micros(self.since)

    @cached_property
    def _until_us(self) -> int | None:
        return None if self.until is None else _micros(self.until)


def _micros(at: float) -> int:
    """`at` in whole microseconds, rounded as datetime (and so the wire) rounds
    it: float arithmetic (at * 1e6) disagrees with it in a quarter of cases."""
    return (datetime.fromtimestamp(at, UTC) - _EPOCH) // _MICROSECOND


_EPOCH = datetime.fromtimestamp(0, UTC)
_MICROSECOND = timedelta(microseconds=1)


def key_of(job: Job) -> Key:
    return (job.created_at, job.id)


def encode_cursor(key: Key) -> str:
    """A cursor that survives a daemon restart: the job's creation time
    (written exactly: repr round-trips a float) and its id."""
    return f"{key[0]!r}/{key[1]}"


def decode_cursor(text: str) -> Key:
    stamp, sep, job_id = text.partition("/")
    try:
        if not sep or not job_id:
            raise ValueError
        return (float(stamp), job_id)
    except ValueError:
        raise InvalidArgument(f"cursor {text!r} is not one a JobPage gave") from None


def parse_statuses(names: Iterable[str]) -> frozenset[JobStatus]:
    wanted = set()
    for name in names:
        try:
            wanted.add(JobStatus(name.strip().upper()))
        except ValueError:
            known = ", ".join(s.value for s in JobStatus)
            raise InvalidArgument(f"status {name!r} is not a job status: use {known}") from None
    return frozenset(wanted)


def parse_time(text: str, what: str) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"{what} {text!r}: give an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise InvalidArgument(f"{what} {text!r}: an RFC 3339 time needs a time zone")
    return moment.timestamp()


def page_size(asked: int) -> int:
    if asked < 0:
        raise InvalidArgument("pageSize must be >= 0")
    return min(asked, MAX_PAGE) if asked else DEFAULT_PAGE


def ordered(jobs: Iterable[Job], query: PageQuery) -> list[Key]:
    """The keys of the matching jobs past the cursor, newest first."""
    after = query.after
    keys = [
        key_of(job) for job in jobs if (after is None or key_of(job) < after) and query.matches(job)
    ]
    keys.sort(reverse=True)
    return keys
