"""The pages: sign-in, jobs, a job, run a job, workflows, host, resources."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

import grpc
from aiohttp import web

from joblet.api import joblet_pb2 as pb
from joblet.ui import job_sort, views
from joblet.ui.app import render, session_of, state_of, stubs_of
from joblet.ui.dag import DagNode, is_placeholder, layout, render_svg
from joblet.ui.sessions import COOKIE_NAME
from joblet.ui.timeline import Span, render_timeline, timestamp_s
from joblet.ui.tokens import TokenError

log = logging.getLogger("joblet.ui")
RPC_TIMEOUT_S = 15.0
HTTP_OF_RPC = {
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 403,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
}


def rpc_failure(request: web.Request, exc: grpc.aio.AioRpcError) -> web.Response:
    """The daemon's refusal as a page with its message and a fitting status."""
    status = HTTP_OF_RPC.get(exc.code(), 502)
    return render(request, "error.html", status=status, message=exc.details() or str(exc.code()))


def see_other(location: str) -> web.Response:
    """A 303 that can carry cookies (a returned HTTPException is deprecated)."""
    return web.Response(status=303, headers={"Location": location})


async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", error="", cert_login=state_of(request).config.tls)


async def login(request: web.Request) -> web.StreamResponse:
    """Redeem a one-time token: a server-side session and its cookie."""
    state = state_of(request)
    form = await request.post()
    try:
        grant = state.redeemer.redeem(str(form.get("token", "")), state.clock())
    except TokenError as exc:
        log.warning("refused a login from %s: %s", request.remote, exc)
        return render(request, "login.html", status=401, error=str(exc))
    return start_session(request, grant.role, grant.cn, "token")


def start_session(request: web.Request, role: str, cn: str, how: str) -> web.Response:
    """A new server-side session of `role` and `cn`, its cookie, and to /jobs."""
    state = state_of(request)
    session = state.sessions.open(role, cn, state.clock())
    log.info("signed in with a %s: %s (%s) from %s", how, cn, role, request.remote)
    response = see_other("/jobs")
    response.set_cookie(
        COOKIE_NAME, session.sid, max_age=int(state.sessions.ttl_s), path="/",
        httponly=True, samesite="Strict", secure=state.config.tls,
    )  # fmt: skip
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    state_of(request).sessions.revoke(session.sid)
    log.info("signed out: %s", session.cn)
    response = see_other("/login")
    response.del_cookie(COOKIE_NAME, path="/")
    return response


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/jobs")


async def first_page(request: web.Request, query: dict[str, str]) -> pb.JobPage:
    """One screen of jobs: the stream's pages up to the request's limit, as
    one page whose `more` says whether a next screen has any."""
    stubs = stubs_of(request)
    call = stubs.jobs.ListJobPages(views.list_request(query), timeout=RPC_TIMEOUT_S)
    merged = pb.JobPage()
    async for page in call:
        merged.jobs.extend(page.jobs)
        merged.nextCursor = page.nextCursor or merged.nextCursor
        merged.more = page.more
    return merged


async def sorted_screen(request: web.Request, query: dict[str, str],
                        sort: job_sort.Sort) -> tuple[list[Any], str]:  # fmt: skip
    """The screen `page` of every matching job in the sort's order, and the
    query of the next screen ("" on the last)."""
    stubs = stubs_of(request)
    call = stubs.jobs.ListJobPages(views.list_request(query, every=True), timeout=RPC_TIMEOUT_S)
    number, now = job_sort.page_number(query), datetime.now(UTC)
    start = number * views.PAGE_SIZE
    ordered: list[Any] = []  # one past the screen: whether a next one has any
    async for page in call:
        ordered = job_sort.first_jobs(ordered, page.jobs, sort, now, start + views.PAGE_SIZE + 1)
    more = len(ordered) > start + views.PAGE_SIZE
    next_query = views.filter_query(query, page=str(number + 1)) if more else ""
    return ordered[start : start + views.PAGE_SIZE], next_query


async def job_screen(request: web.Request, query: dict[str, str]) -> tuple[list[Any], str]:
    """The jobs of the page's URL (filters, sort, screen) and the next
    screen's query; without a sort, the cursor's walk in creation order."""
    sort = job_sort.parse_sort(query)
    if sort.column:
        return await sorted_screen(request, query, sort)
    page = await first_page(request, query)
    next_query = views.filter_query(query, cursor=page.nextCursor) if page.more else ""
    return list(page.jobs), next_query


async def jobs(request: web.Request) -> web.Response:
    query = dict(request.query)
    try:
        found, next_query = await job_screen(request, query)
    except grpc.aio.AioRpcError as exc:
        return rpc_failure(request, exc)
    now = datetime.now(UTC)
    rows = [views.job_row(job, now) for job in found]
    sort = job_sort.parse_sort(query)
    heads = [(h, views.filter_query(query, sort=h.key, order=h.order, cursor="", page=""))
             for h in job_sort.headers(sort)]  # fmt: skip
    return render(
        request, "jobs.html", rows=rows, query=query, next_query=next_query,
        stream_query=views.filter_query(query), heads=heads,
    )  # fmt: skip


async def job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    stubs = stubs_of(request)
    try:
        status = await stubs.jobs.GetJobStatus(
            pb.GetJobStatusReq(uuid=job_id), timeout=RPC_TIMEOUT_S
        )
    except grpc.aio.AioRpcError as exc:
        return rpc_failure(request, exc)
    return render(
        request, "job.html", job=status, fields=views.status_fields(status),
        ended=status.status in views.ENDED,
        gpus=views.has_gpus(status),
    )  # fmt: skip


async def run_form(request: web.Request, error: str = "", field: str = "",
                   values: Any = None, status: int = 200) -> web.Response:  # fmt: skip
    stubs = stubs_of(request)
    pickers: dict[str, list[str]] = {"networks": [], "volumes": [], "runtimes": []}
    try:
        nets = await stubs.networks.ListNetworks(pb.EmptyRequest(), timeout=RPC_TIMEOUT_S)
        vols = await stubs.volumes.ListVolumes(pb.EmptyRequest(), timeout=RPC_TIMEOUT_S)
        rts = await stubs.runtimes.ListRuntimes(pb.EmptyRequest(), timeout=RPC_TIMEOUT_S)
        pickers["networks"] = [n.name for n in nets.networks]
        pickers["volumes"] = [v.name for v in vols.volumes]
        pickers["runtimes"] = [r.name for r in rts.runtimes]
    except grpc.aio.AioRpcError as exc:
        log.info("run form pickers: %s", exc.details())
    return render(
        request, "run.html", status=status, error=error, field=field, values=values or {},
        idempotency_key=secrets.token_urlsafe(16), **pickers,
    )  # fmt: skip


async def run_page(request: web.Request) -> web.Response:
    if not session_of(request).is_admin:
        return render(request, "error.html", status=403, message="viewers may not run jobs")
    return await run_form(request)


async def workflows(request: web.Request) -> web.Response:
    stubs = stubs_of(request)
    try:
        answer = await stubs.jobs.ListWorkflows(
            pb.ListWorkflowsRequest(includeCompleted=True), timeout=RPC_TIMEOUT_S
        )
    except grpc.aio.AioRpcError as exc:
        return rpc_failure(request, exc)
    return render(request, "workflows.html", workflows=list(answer.workflows))


def workflow_svg(jobs: list[Any]) -> str:
    """The DAG of a workflow's jobs, nodes linking to their job pages."""
    deps = {j.jobName: list(j.dependencies) for j in jobs}
    nodes = {j.jobName: DagNode(j.jobName, j.status, f"/jobs/{j.jobUuid}" if j.jobUuid else "")
             for j in jobs}  # fmt: skip
    return render_svg(layout(deps), nodes)


def workflow_timeline(jobs: list[Any], now: float) -> str:
    """The jobs' spans in time, in the graph's order (layer by layer)."""
    order = [n for row in layout({j.jobName: list(j.dependencies) for j in jobs}).layers
             for n in row if not is_placeholder(n)]  # fmt: skip
    by_name = {j.jobName: j for j in jobs}
    spans = [
        Span(name, j.status, timestamp_s(j.startTime), timestamp_s(j.endTime),
             f"/jobs/{j.jobUuid}" if j.jobUuid else "")
        for name in order if (j := by_name.get(name)) is not None
    ]  # fmt: skip
    return render_timeline(spans, now)


async def workflow(request: web.Request) -> web.Response:
    wf_id = request.match_info["wf_id"]
    stubs = stubs_of(request)
    try:
        answer = await stubs.jobs.GetWorkflowStatus(
            pb.GetWorkflowStatusRequest(workflowUuid=wf_id), timeout=RPC_TIMEOUT_S
        )
    except grpc.aio.AioRpcError as exc:
        return rpc_failure(request, exc)
    jobs = list(answer.jobs)
    return render(request, "workflow.html", workflow=answer.workflow, jobs=jobs,
                  svg=workflow_svg(jobs),
                  timeline=workflow_timeline(jobs, state_of(request).clock()))  # fmt: skip


async def host(request: web.Request) -> web.Response:
    stubs = stubs_of(request)
    try:
        status = await stubs.monitoring.GetSystemStatus(pb.EmptyRequest(), timeout=RPC_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        return rpc_failure(request, exc)
    return render(request, "host.html", fields=views.status_fields(status))


async def resources(request: web.Request) -> web.Response:
    stubs = stubs_of(request)
    try:
        nets = await stubs.networks.ListNetworks(pb.EmptyRequest(), timeout=RPC_TIMEOUT_S)
        vols = await stubs.volumes.ListVolumes(pb.EmptyRequest(), timeout=RPC_TIMEOUT_S)
        rts = await stubs.runtimes.ListRuntimes(pb.EmptyRequest(), timeout=RPC_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        return rpc_failure(request, exc)
    return render(request, "resources.html", networks=list(nets.networks),
                  volumes=list(vols.volumes), runtimes=list(rts.runtimes))  # fmt: skip


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/jobs", jobs)
    app.router.add_get("/jobs/{job_id}", job)
    app.router.add_get("/run", run_page)
    app.router.add_get("/workflows", workflows)
    app.router.add_get("/workflows/{wf_id}", workflow)
    app.router.add_get("/host", host)
    app.router.add_get("/resources", resources)
