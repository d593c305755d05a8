"""The nodes page and the node switcher: with several nodes in `ui.nodes`,
each is asked what `rnx nodes` asks (reachable, latency, version, node id,
active jobs), and a session picks the node its pages talk to. The session's
role applies on every node: the UI holds each node's role certificates."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import grpc
from aiohttp import web

from joblet.api import joblet_pb2 as pb
from joblet.client.probe import ACTIVE_STATUSES, Probe
from joblet.ui.app import render, session_of, state_of
from joblet.ui.sessions import Session
from joblet.ui.upstream import RoleStubs, UnknownNode

log = logging.getLogger("joblet.ui")
PROBE_TIMEOUT_S = 15.0  # a first GetSystemStatus may look for a cloud first


@dataclass(frozen=True)
class NodeRow:
    name: str
    address: str
    selected: bool
    probe: Probe | None
    error: str


async def probe(stubs: RoleStubs) -> Probe:
    """One timed GetSystemStatus and the count of active jobs, as `rnx nodes`."""
    started = time.perf_counter()
    status = await stubs.monitoring.GetSystemStatus(pb.EmptyRequest(), timeout=PROBE_TIMEOUT_S)
    latency_ms = (time.perf_counter() - started) * 1000
    request = pb.ListJobPagesRequest(statuses=ACTIVE_STATUSES, pageSize=1000)
    active = 0
    async for page in stubs.jobs.ListJobPages(request, timeout=PROBE_TIMEOUT_S):
        active += len(page.jobs)
    return Probe(latency_ms, status.server_version.version, status.host.nodeId, active)


async def _row(request: web.Request, name: str, session: Session) -> NodeRow:
    upstream = state_of(request).upstream
    stubs = upstream.as_role(session.role, name)
    try:
        answer, error = await probe(stubs), ""
    except grpc.aio.AioRpcError as exc:
        answer, error = None, f"{exc.code().name}: {exc.details()}"
    return NodeRow(name, upstream.address_of(name), name == session.node, answer, error)


async def _cluster(request: web.Request, session: Session) -> pb.ClusterNodes | None:
    """The cluster the session's node belongs to, None when it is in none."""
    stubs = state_of(request).upstream.as_role(session.role, session.node)
    try:
        answer: pb.ClusterNodes = await stubs.cluster.ListClusterNodes(
            pb.EmptyRequest(), timeout=PROBE_TIMEOUT_S
        )
    except grpc.aio.AioRpcError:
        return None  # not a cluster member (or it does not answer): no table
    return answer


async def nodes_page(request: web.Request) -> web.Response:
    session = session_of(request)
    names = state_of(request).upstream.names
    rows = await asyncio.gather(*(_row(request, name, session) for name in names))
    cluster = await _cluster(request, session)
    return render(request, "nodes.html", rows=rows, cluster=cluster)


def _local_path(text: str) -> str:
    """Where to go back to: a path on this UI only (no open redirect)."""
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/jobs"
    return text


async def select_node(request: web.Request) -> web.StreamResponse:
    """Point the session at another node (CSRF checked; viewers may: it
    changes what they see, not the node)."""
    state, session = state_of(request), session_of(request)
    form = await request.post()
    name = str(form.get("node", ""))
    try:
        state.upstream.address_of(name)
    except UnknownNode as exc:
        return render(request, "error.html", status=404, message=str(exc))
    state.sessions.select_node(session.sid, name)
    log.info("%s switched to node %s", session.cn, name)
    # a job or workflow page names an id of the node left behind
    back = _local_path(str(form.get("next", "/jobs")))
    if back.startswith(("/jobs/", "/workflows/")):
        back = "/" + back.split("/")[1]
    raise web.HTTPSeeOther(back)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/nodes", nodes_page)
    app.router.add_post("/nodes/select", select_node)
