"""`rnx list`: which jobs (filters, newest first, a limit) and how they are
shown (a table that fits the terminal, ids only, or chosen fields).

Pure functions over `pb.Job`s. The node filters and pages (ListJobPages:
statuses, name prefix, creation time, limit); a name glob is finished here.
Against a node without ListJobPages the same filters run here over ListJobs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from joblet.cli.job_view import command_line
from joblet.cli.node_select import with_node_column
from joblet.cli.output import MISSING, format_duration, format_table, job_duration, parse_time
from joblet.cli.terminal import escape_field

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb

SHORT_ID = 8  # enough to be unique among a node's jobs, and a valid prefix
NAME_WIDTH = 16
MIN_COMMAND_WIDTH = 10
ELLIPSIS = "…"
LIST_TIME_FORMAT = "%m-%d %H:%M"
HEADERS = ("ID", "NAME", "STATUS", "STARTED", "DURATION", "COMMAND")
PRIO_AT = 3  # the PRIO column, when shown, comes after STATUS


DEFAULT_LIMIT = 100
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class JobFilter:
    statuses: frozenset[str] = frozenset()  # upper case; empty: any
    name: str = ""  # a glob; empty: any
    since: datetime | None = None  # created (ListJobs: started or scheduled) at or after
    limit: int = 0  # 0: all


def page_request(wanted: JobFilter) -> pb.ListJobPagesRequest:
    """The node's share of `wanted`: all of it but a glob past a name prefix."""
    from joblet.api import joblet_pb2 as pb

    prefix, whole = _name_prefix(wanted.name)
    since = wanted.since.isoformat().replace("+00:00", "Z") if wanted.since else ""
    return pb.ListJobPagesRequest(
        statuses=sorted(wanted.statuses),
        namePrefix=prefix,
        createdSince=since,
        # With a glob left to filter here, the node cannot count for us.
        limit=wanted.limit if whole else 0,
        pageSize=1000,
    )


def _name_prefix(glob: str) -> tuple[str, bool]:
    """The literal start of `glob`, and whether `prefix*` is all of it."""
    cut = min((i for i, c in enumerate(glob) if c in GLOB_CHARS), default=len(glob))
    prefix = glob[:cut]
    return prefix, not glob or glob == prefix + "*"


def from_pages(pages: Sequence[pb.JobPage], wanted: JobFilter) -> tuple[list[pb.Job], bool]:
    """The jobs of `pages` that pass `wanted` (in the node's order, newest
    first), and whether more jobs match than were kept."""
    jobs = [job for page in pages for job in page.jobs]
    more = bool(pages) and pages[-1].more
    if wanted.name and not _name_prefix(wanted.name)[1]:
        jobs = [job for job in jobs if fnmatch.fnmatchcase(job.name, wanted.name)]
    if wanted.limit and len(jobs) > wanted.limit:
        jobs, more = jobs[: wanted.limit], True
    return jobs, more


def _when(job: pb.Job) -> datetime | None:
    return parse_time(job.startTime) or parse_time(job.scheduledTime)


def newest_first_key(job: pb.Job) -> tuple[int, datetime]:
    """Jobs with no time yet (queued) first, then the latest start first."""
    when = _when(job)
    return (1, datetime.max) if when is None else (0, when)


def select_jobs(jobs: Sequence[pb.Job], wanted: JobFilter) -> list[pb.Job]:
    """The jobs that pass `wanted`, newest first, at most `wanted.limit`."""
    chosen = [job for job in jobs if _passes(job, wanted)]
    chosen.sort(key=newest_first_key, reverse=True)
    return chosen[: wanted.limit] if wanted.limit else chosen


def _passes(job: pb.Job, wanted: JobFilter) -> bool:
    if wanted.statuses and job.status.upper() not in wanted.statuses:
        return False
    if wanted.name and not fnmatch.fnmatchcase(job.name, wanted.name):
        return False
    if wanted.since is not None:
        when = _when(job)
        return when is None or when >= wanted.since  # a queued job is as new as it gets
    return True


def cut(text: str, width: int) -> str:
    """`text` on one line, at most `width` characters, `…` where it was cut."""
    text = escape_field(text)
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS


def _started(job: pb.Job, now: datetime, tz: tzinfo | None) -> str:
    if job.status == "SCHEDULED":
        at = parse_time(job.scheduledTime)
        if at is not None:
            return "in " + format_duration(max((at - now).total_seconds(), 0.0))
    started = parse_time(job.startTime)
    return started.astimezone(tz).strftime(LIST_TIME_FORMAT) if started else MISSING


def render_list(
    jobs: Sequence[pb.Job],
    now: datetime,
    width: int = 80,
    tz: tzinfo | None = None,
    *,
    full: bool = False,
    nodes: Sequence[str] = (),
) -> str:
    """A table of `width` columns at most (`full`: ids and commands whole);
    with `nodes` (one per job), a NODE column first."""
    if not jobs:
        return "No jobs."
    rows = [
        [
            job.uuid if full else job.uuid[:SHORT_ID],
            cut(job.name, NAME_WIDTH) if job.name else MISSING,
            job.status,
            _started(job, now, tz),
            job_duration(job.startTime, job.endTime, now),
            command_line(job.command, job.args),
        ]
        for job in jobs
    ]
    headers = list(HEADERS)
    if any(job.priority for job in jobs):  # PRIO only where priorities are in use
        headers.insert(PRIO_AT, "PRIO")
        for job, row in zip(jobs, rows, strict=True):
            row.insert(PRIO_AT, str(job.priority))
    if nodes:
        headers, rows = with_node_column(headers, rows, nodes)
    if not full:
        used = _widths(headers[:-1], [row[:-1] for row in rows])
        room = max(width - used, MIN_COMMAND_WIDTH)
        for row in rows:
            row[-1] = cut(row[-1], room)
    return format_table(headers, rows)


def _widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """Columns taken by all but the last column, separators included."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    return sum(widths) + 2 * len(widths)


# --format fields: name -> value of one job (RFC 3339 times, as the API has them).
FIELDS: dict[str, Callable[[pb.Job], str]] = {
    "id": lambda job: job.uuid,
    "name": lambda job: job.name,
    "status": lambda job: job.status,
    "exit_code": lambda job: str(job.exitCode),
    "start_time": lambda job: job.startTime,
    "end_time": lambda job: job.endTime,
    "scheduled_time": lambda job: job.scheduledTime,
    "command": lambda job: command_line(job.command, job.args),
    "end_reason": lambda job: job.endReason,
    "node_id": lambda job: job.nodeId,
    "priority": lambda job: str(job.priority),
}


def parse_fields(text: str) -> list[str]:
    """`id,name,status` -> the field names; ValueError naming the known ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FIELDS]
    if unknown or not names:
        raise ValueError(
            f"unknown field {', '.join(unknown) or '(none given)'}: use {', '.join(FIELDS)}"
        )
    return names


def format_rows(jobs: Sequence[pb.Job], fields: Sequence[str]) -> str:
    """One line per job, the fields separated by tabs (for `cut`, `awk`)."""
    return "\n".join("\t".join(escape_field(FIELDS[name](job)) for name in fields) for job in jobs)


def since_time(text: str, now: datetime) -> datetime:
    """`--since`: a duration back from now ("10m", "2h") or an RFC 3339 time."""
    from joblet.cli.units import parse_seconds

    try:
        return now - timedelta(seconds=parse_seconds(text))
    except ValueError:
        pass
    at = parse_time(text.replace("Z", "+00:00"))
    if at is None:
        raise ValueError(f"since {text!r}: give a duration (10m, 2h) or an RFC 3339 time")
    return at
