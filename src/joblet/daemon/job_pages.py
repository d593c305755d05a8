"""ListJobPages: the jobs in pages, newest first, filtered, with a cursor
(joblet.jobs.paging), and ListJobs's bound (job_listing).

The order is taken once per call from a snapshot of the keys; each page
then reads the jobs as they are now (one collected meanwhile is left out,
one whose status no longer matches too) and yields to the event loop, so a
listing of every job on a busy node does not hold RunJob up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from joblet.api import joblet_pb2 as pb
from joblet.daemon import mappers
from joblet.errors import InvalidArgument
from joblet.jobs.model import Job
from joblet.jobs.paging import (
    PageQuery,
    decode_cursor,
    encode_cursor,
    ordered,
    page_size,
    parse_statuses,
    parse_time,
)

# A page stays well under what any client accepts (gRPC's default 4 MiB):
# it ends once it passes this, and one job is at most ~1.3 MiB.
PAGE_BYTES = 1024 * 1024


def query_from(request: pb.ListJobPagesRequest) -> PageQuery:
    if request.limit < 0:
        raise InvalidArgument("limit must be >= 0")
    return PageQuery(
        statuses=parse_statuses(request.statuses),
        name_prefix=request.namePrefix,
        id_prefix=request.idPrefix.lower(),
        workflow=request.workflowUuid,
        since=parse_time(request.createdSince, "createdSince"),
        until=parse_time(request.createdUntil, "createdUntil"),
        node_id=request.nodeId,
        page_size=page_size(request.pageSize),
        limit=request.limit,
        after=decode_cursor(request.cursor) if request.cursor else None,
    )


async def pages(
    snapshot: list[Job], find: Callable[[str], Job | None], query: PageQuery
) -> AsyncIterator[pb.JobPage]:
    """The pages for `query` (at least one, maybe empty)."""
    keys = ordered(snapshot, query)
    del snapshot
    page: list[pb.Job] = []
    size = 0
    sent = 0
    last = ""
    for index, key in enumerate(keys):
        job = find(key[1])
        if job is None or not query.matches(job):
            continue  # collected or changed since the snapshot
        if query.limit and sent == query.limit:
            yield pb.JobPage(jobs=page, nextCursor=last, more=_any_left(keys[index:], find, query))
            return
        message = mappers.job_message(job)
        page.append(message)
        size += message.ByteSize()
        sent += 1
        last = encode_cursor(key)
        if len(page) == query.page_size or size >= PAGE_BYTES:
            yield pb.JobPage(jobs=page, nextCursor=last)  # the stream's write yields
            page, size = [], 0
    if page or not sent:
        yield pb.JobPage(jobs=page, nextCursor=last)


def _any_left(
    keys: list[tuple[float, str]], find: Callable[[str], Job | None], query: PageQuery
) -> bool:
    for _, job_id in keys:
        job = find(job_id)
        if job is not None and query.matches(job):
            return True
    return False
