"""Server-sent events: exactly one stream per page, carrying all its topics.

Only log events carry an id (`GENERATION:OFFSET`), so the browser's
Last-Event-ID on a reconnect is the log offset it has: the stream resumes
there, with no gap and no duplicate. Status, rows and graphs are re-sent
whole when they change, so they need no id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from html import escape
from typing import Any

import grpc
from aiohttp import web

from joblet.api import joblet_pb2 as pb
from joblet.ui import charts, views
from joblet.ui.app import UiState, session_of, state_of, stubs_of
from joblet.ui.feeds import LogFeed, SampleFeed, parse_event_id
from joblet.ui.pages import RPC_TIMEOUT_S, job_screen, workflow_svg, workflow_timeline

POLL_S = 1.0
SUMMARY_S = 5.0
KEEPALIVE_S = 15.0


def sse_event(event: str, data: str, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    # CR alone also ends a line in SSE: the text's own line breaks become data lines
    lines += [
        f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ]
    return ("\n".join(lines) + "\n\n").encode()


class EventStream:
    """One text/event-stream response; writes from several topics in turn."""

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response
        self._response = response
        self._lock = asyncio.Lock()

    async def send(self, event: str, data: str, event_id: str | None = None) -> None:
        async with self._lock:
            await self._response.write(sse_event(event, data, event_id))

    async def comment(self) -> None:
        async with self._lock:
            await self._response.write(b": keep-alive\n\n")


async def open_stream(request: web.Request) -> EventStream:
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "X-Accel-Buffering": "no",
    })  # fmt: skip
    await response.prepare(request)
    return EventStream(response)


async def run_topics(*topics: Awaitable[None]) -> None:
    """Until the browser goes (a write fails) or every topic has ended."""
    try:
        async with asyncio.TaskGroup() as group:
            for topic in topics:
                group.create_task(topic)  # type: ignore[arg-type]
    except* (ConnectionResetError, ConnectionError):
        pass


async def _poll_views(stream: EventStream, make: Callable[[], Awaitable[dict[str, str]]],
                      events: tuple[str, ...], ended: Callable[[], bool] = lambda: False, *,
                      every_s: float = POLL_S, wake: asyncio.Event | None = None,
                      ) -> None:  # fmt: skip
    """Each of `events` (HTML made by one `make`) sent when it changes."""
    last: dict[str, str] = {}
    while True:
        try:
            views = await make()
        except grpc.aio.AioRpcError as exc:
            # the message may quote the URL (a job id): text, never markup
            error = f"<p class='error'>{escape(exc.details() or str(exc.code()))}</p>"
            views = dict.fromkeys(events, error)
        for event, html in views.items():
            if html != last.get(event):
                await stream.send(event, html)
                last[event] = html
        if ended():
            return
        with contextlib.suppress(TimeoutError):  # `wake`: poll at once (the job ended)
            await asyncio.wait_for((wake or asyncio.Event()).wait(), every_s)


async def _poll_changes(stream: EventStream, event: str, make: Callable[[], Awaitable[str]],
                        ended: Callable[[], bool] = lambda: False, *,
                        every_s: float = POLL_S, wake: asyncio.Event | None = None,
                        ) -> None:  # fmt: skip
    async def one() -> dict[str, str]:
        return {event: await make()}

    await _poll_views(stream, one, (event,), ended, every_s=every_s, wake=wake)


def _log_stream(state: UiState, job_id: str, node: str) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        stubs = state.upstream.as_role("viewer", node)  # reading needs no more
        request = pb.GetJobLogsReq(uuid=job_id, tail=10_000)
        async for chunk in stubs.jobs.GetJobLogs(request):
            yield chunk.payload

    return chunks


def _metric_stream(state: UiState, job_id: str, node: str) -> Callable[[], AsyncIterator[Any]]:
    async def samples() -> AsyncIterator[Any]:
        stubs = state.upstream.as_role("viewer", node)
        history = await stubs.jobs.GetJobMetricsHistory(
            pb.JobMetricsHistoryRequest(uuid=job_id), timeout=RPC_TIMEOUT_S
        )
        for sample in history.samples:
            yield sample
        async for sample in stubs.jobs.StreamJobMetrics(pb.JobMetricsRequest(uuid=job_id)):
            yield sample

    return samples


async def _follow_log(stream: EventStream, feed: LogFeed, last_event_id: str | None) -> None:
    offset = parse_event_id(last_event_id, feed.generation)
    if last_event_id and offset == 0:
        await stream.send("reset", "")  # another feed: the browser starts over
    placed = False  # the browser knows the number of the line the next piece starts
    while True:
        start, piece = await feed.read(offset, KEEPALIVE_S)
        if piece:
            line = feed.tail.line_at(start)  # before any await: the tail may move on
            if start > offset:
                await stream.send("skipped", str(start - offset))
            if start > offset or not placed:
                await stream.send("at", f"{feed.generation}:{line}")
                placed = True
            offset = start + len(piece)
            text = piece.decode("utf-8", errors="replace")
            await stream.send("log", text, f"{feed.generation}:{offset}")
        elif feed.done:
            await stream.send("end", feed.error)
            return
        else:
            await stream.comment()


async def _follow_metrics(stream: EventStream, feed: SampleFeed) -> None:
    seen = 0
    await stream.send("chartsreset", "")  # all kept samples follow, again after a reconnect
    while True:
        seen, fresh = await feed.read(seen, KEEPALIVE_S)
        if fresh:  # whatever piled up goes as one event: a slow browser catches up
            await stream.send("metrics", json.dumps([charts.job_point(s) for s in fresh]))
        elif feed.done:
            return


async def job_events(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    job_id = request.match_info["job_id"]
    stubs = stubs_of(request)
    node = session_of(request).node
    template = state.templates.get_template("job_status.html")
    ended = False
    job_ended = asyncio.Event()

    async def status_html() -> str:
        nonlocal ended
        try:
            res = await stubs.jobs.GetJobStatus(
                pb.GetJobStatusReq(uuid=job_id), timeout=RPC_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            ended = exc.code() == grpc.StatusCode.NOT_FOUND  # deleted meanwhile: nothing to poll
            if ended:
                job_ended.set()
            raise
        ended = res.status in views.ENDED
        if ended:
            job_ended.set()
        return template.render(fields=views.status_fields(res))

    summary_template = state.templates.get_template("job_summary.html")
    summary_ended = False

    async def summary_html() -> str:
        nonlocal summary_ended
        summary_ended = ended  # one more after the job's end: its last samples
        res = await stubs.jobs.GetJobMetricsSummary(
            pb.JobMetricsSummaryRequest(uuid=job_id), timeout=RPC_TIMEOUT_S
        )
        return summary_template.render(rows=charts.summary_rows(res))

    stream = await open_stream(request)
    async with (
        state.feeds.follow(f"log:{node}:{job_id}",
                           lambda: LogFeed(_log_stream(state, job_id, node))) as logs,
        state.feeds.follow(f"metrics:{node}:{job_id}",
                           lambda: SampleFeed(_metric_stream(state, job_id, node))) as metrics,
    ):  # fmt: skip
        await run_topics(
            _poll_changes(stream, "status", status_html, lambda: ended),
            _follow_log(stream, logs, request.headers.get("Last-Event-ID")),
            _follow_metrics(stream, metrics),
            _poll_changes(
                stream,
                "summary",
                summary_html,
                lambda: summary_ended,
                every_s=SUMMARY_S,
                wake=job_ended,
            ),
        )
        with contextlib.suppress(ConnectionError):
            await stream.send("done", "")  # else the browser would connect again
    return stream.response


async def jobs_events(request: web.Request) -> web.StreamResponse:
    """The jobs page's rows, re-sent whole when any changes."""
    state = state_of(request)
    template = state.templates.get_template("job_rows.html")
    query = dict(request.query)

    async def rows_html() -> str:
        found, _ = await job_screen(request, query)
        now = datetime.now(UTC)
        return template.render(rows=[views.job_row(job, now) for job in found])

    stream = await open_stream(request)
    await run_topics(_poll_changes(stream, "rows", rows_html))
    return stream.response


async def workflow_events(request: web.Request) -> web.StreamResponse:
    """A workflow's graph and timeline, re-drawn when they change (a job's
    status; the running bars grow with the clock)."""
    state = state_of(request)
    wf_id = request.match_info["wf_id"]
    stubs = stubs_of(request)

    async def views() -> dict[str, str]:
        answer = await stubs.jobs.GetWorkflowStatus(
            pb.GetWorkflowStatusRequest(workflowUuid=wf_id), timeout=RPC_TIMEOUT_S
        )
        jobs = list(answer.jobs)
        return {"dag": workflow_svg(jobs), "timeline": workflow_timeline(jobs, state.clock())}

    stream = await open_stream(request)
    await run_topics(_poll_views(stream, views, ("dag", "timeline")))
    return stream.response


HOST_INTERVAL_S = 2


def _host_stream(state: UiState, node: str) -> Callable[[], AsyncIterator[Any]]:
    async def samples() -> AsyncIterator[Any]:
        stubs = state.upstream.as_role("viewer", node)
        request = pb.StreamMetricsReq(intervalSeconds=HOST_INTERVAL_S)
        async for sample in stubs.monitoring.StreamSystemMetrics(request):
            yield sample

    return samples


async def host_events(request: web.Request) -> web.StreamResponse:
    """The host's metrics, one upstream stream for every browser on the page:
    every sample as a chart point (those kept from before the page opened
    too), and the latest one's tables; a browser that fell behind gets what
    piled up in one event."""
    state = state_of(request)
    template = state.templates.get_template("host_live.html")
    stream = await open_stream(request)

    async def follow(feed: SampleFeed) -> None:
        seen = 0
        await stream.send("chartsreset", "")  # all kept samples follow, again after a reconnect
        while True:
            seen, fresh = await feed.read(seen, KEEPALIVE_S)
            if fresh:
                points = [charts.host_point(s) for s in fresh]
                await stream.send("hostpoints", json.dumps(points))
                await stream.send("host", template.render(**charts.host_tables(fresh[-1])))
            elif feed.done:
                return

    node = session_of(request).node
    make = lambda: SampleFeed(_host_stream(state, node))  # noqa: E731
    async with state.feeds.follow(f"host:{node}", make) as feed:
        await run_topics(follow(feed))
    return stream.response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/events/jobs", jobs_events)
    app.router.add_get("/events/host", host_events)
    app.router.add_get("/jobs/{job_id}/events", job_events)
    app.router.add_get("/workflows/{wf_id}/events", workflow_events)
