"""The log pane's requests besides its event stream: earlier lines on demand
and the whole output as a file."""

from __future__ import annotations

import json
import logging

import grpc
from aiohttp import web

from joblet.api import joblet_pb2 as pb
from joblet.ui.app import refuse, session_of, state_of, stubs_of
from joblet.ui.feeds import LogFeed
from joblet.ui.log_window import MATCH, MAX_WANT, SLACK, Ask, LineCollector, align

log = logging.getLogger("joblet.ui")
EARLIER_TIMEOUT_S = 60.0


def _int(request: web.Request, name: str, default: int | None = None) -> int:
    text = request.query.get(name, "")
    try:
        return int(text) if text or default is None else default
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a whole number\n") from None


async def earlier(request: web.Request) -> web.Response:
    """`lines` lines (at most 10,000) before line `before` of the page's feed
    (generation `gen`), as JSON: text, the first line's number, at_start."""
    job_id = request.match_info["job_id"]
    before, want = _int(request, "before"), min(max(_int(request, "lines", 1000), 1), MAX_WANT)
    feed = state_of(request).feeds.get(f"log:{session_of(request).node}:{job_id}")
    if not isinstance(feed, LogFeed) or feed.generation != request.query.get("gen"):
        return refuse(409, "this output is no longer followed here: reload the page")
    # one snapshot: the feed grows while the daemon answers
    ask = Ask(before, want, feed.tail.lines, feed.tail.last_lines(MATCH))
    if before > ask.feed_lines:
        return refuse(400, "before is past the end of the output")
    answer = LineCollector(head_size=want + SLACK, tail_size=MATCH + SLACK)
    stubs = stubs_of(request)
    call = stubs.jobs.GetJobLogs(pb.GetJobLogsReq(uuid=job_id, tail=ask.tail, noFollow=True),
                                 timeout=EARLIER_TIMEOUT_S)  # fmt: skip
    try:
        async for chunk in call:
            answer.feed(chunk.payload)
    except grpc.aio.AioRpcError as exc:
        return refuse(502, f"the daemon: {exc.details() or exc.code()}")
    found = align(answer, ask)
    if found is None:
        return refuse(409, "the output changed under the page: reload it")
    text = b"".join(line + b"\n" for line in found.lines).decode("utf-8", errors="replace")
    body = {"text": text, "first": found.first, "atStart": found.at_start}
    return web.Response(text=json.dumps(body), content_type="application/json")


async def download(request: web.Request) -> web.StreamResponse:
    """The whole output so far as a file, streamed (not the pane's window)."""
    job_id = request.match_info["job_id"]
    stubs = stubs_of(request)
    call = stubs.jobs.GetJobLogs(pb.GetJobLogsReq(uuid=job_id, noFollow=True))
    response = web.StreamResponse(headers={
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{job_id[:36]}.log"',
    })  # fmt: skip
    try:
        async for chunk in call:
            if not response.prepared:
                await response.prepare(request)
            await response.write(chunk.payload)
    except grpc.aio.AioRpcError as exc:
        if not response.prepared:
            return refuse(404 if exc.code() == grpc.StatusCode.NOT_FOUND else 502,
                          exc.details() or str(exc.code()))  # fmt: skip
        log.info("download of %s cut short: %s", job_id, exc.details())
    if not response.prepared:
        await response.prepare(request)
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/jobs/{job_id}/log/earlier", earlier)
    app.router.add_get("/jobs/{job_id}/log.txt", download)
