"""What the pages show, from the API's messages: pure functions, no I/O."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from google.protobuf.message import Message

from joblet.api import joblet_pb2 as pb

SECRET_MASK = "***"
PAGE_SIZE = 50
MAX_PAGE = 1000  # ListJobPages' largest page
FILTERS = ("status", "name", "id", "node", "since", "until")
SORTING = ("sort", "order")
ENDED = frozenset({"COMPLETED", "FAILED", "STOPPED", "CANCELED", "CANCELLED"})


@dataclass(frozen=True)
class JobRow:
    id: str
    short_id: str
    name: str
    node: str
    status: str
    command: str
    start: str
    duration: str
    exit_code: str


def parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def duration(start: str, end: str, now: datetime) -> str:
    began, ended = parse_time(start), parse_time(end) or now
    if began is None:
        return ""
    seconds = max(int((ended - began).total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def job_row(job: pb.Job, now: datetime) -> JobRow:
    ended = job.status in ENDED
    return JobRow(
        id=job.uuid,
        short_id=job.uuid[:8],
        name=job.name,
        node=job.nodeId,
        status=job.status,
        command=shlex.join([job.command, *job.args]),
        start=job.startTime[:19].replace("T", " "),
        duration=duration(job.startTime, job.endTime, now),
        exit_code=str(job.exitCode) if ended else "",
    )


def has_gpus(status: pb.GetJobStatusRes) -> bool:
    """Whether the job page charts GPUs: asked for by count or id, or given some."""
    return status.gpu_count > 0 or len(status.gpu_indices) > 0 or len(status.gpu_ids) > 0


def _value(message: Message, name: str, secret: bool) -> str:
    field = message.DESCRIPTOR.fields_by_name[name]
    value: Any = getattr(message, name)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        items = sorted(value.items())
        return ", ".join(f"{k}={SECRET_MASK if secret else v}" for k, v in items)
    if field.is_repeated:
        return ", ".join(str(v) for v in value)
    if field.message_type is not None:
        return str(value).strip().replace("\n", ", ")
    return str(value)


def status_fields(res: Message) -> list[tuple[str, str]]:
    """Every field of a GetJobStatus answer, in the message's order; secret
    values shown as ***."""
    return [
        (field.name, _value(res, field.name, secret=field.name == "secret_environment"))
        for field in res.DESCRIPTOR.fields
    ]


def list_request(
    query: Mapping[str, str], page_size: int = PAGE_SIZE, *, every: bool = False
) -> pb.ListJobPagesRequest:
    """The ListJobPages request of the jobs page's URL query; `every`: all
    jobs that match, in the largest pages (a sorted screen is cut from them)."""
    statuses = [s.strip().upper() for s in query.get("status", "").split(",") if s.strip()]
    return pb.ListJobPagesRequest(
        statuses=statuses,
        namePrefix=query.get("name", "").strip(),
        idPrefix=query.get("id", "").strip(),
        nodeId=query.get("node", "").strip(),
        createdSince=query.get("since", "").strip(),
        createdUntil=query.get("until", "").strip(),
        # one page past the limit: the daemon then says whether more match
        pageSize=MAX_PAGE if every else page_size + 1,
        limit=0 if every else page_size,
        cursor="" if every else query.get("cursor", ""),
    )


def filter_query(query: Mapping[str, str], **changes: str) -> str:
    """The URL query of the filters in `query`, with `changes`, empties left out."""
    kept = {k: query.get(k, "") for k in (*FILTERS, *SORTING, "cursor", "page")}
    kept.update(changes)
    return urlencode({k: v for k, v in kept.items() if v})
