"""The actions: POSTs only, admins only (the middleware checks role, CSRF and
Origin first), each logged with the session's CN and made with the admin
certificate, so the daemon checks the role again."""

from __future__ import annotations

import asyncio
import logging

import grpc
from aiohttp import web

from joblet.api import joblet_pb2 as pb
from joblet.ui.app import render, session_of, state_of, stubs_of
from joblet.ui.forms import FormError, run_request
from joblet.ui.pages import RPC_TIMEOUT_S, rpc_failure, run_form
from joblet.ui.upload_form import read_uploads, split_form

log = logging.getLogger("joblet.ui")
MAX_REMEMBERED = 10_000


async def run_job(request: web.Request) -> web.StreamResponse:
    """Start the form's job once per idempotency key: a double click or a
    retried POST gets the job the first one started, never a second job."""
    state, session = state_of(request), session_of(request)
    form, files = split_form(await request.post())
    key = f"{session.sid}:{form.get('idempotency_key', '')}"
    earlier = state.submitted.get(key) if form.get("idempotency_key") else None
    if earlier is not None:
        try:
            raise web.HTTPSeeOther(f"/jobs/{await asyncio.shield(earlier)}")
        except (grpc.aio.AioRpcError, FormError):
            pass  # the first one failed: this one tries for itself
    try:
        req = run_request(form)
        req.uploads.extend(read_uploads(files, state.config.max_upload_bytes))
    except FormError as exc:
        return await run_form(request, str(exc), exc.field, form, status=400)
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    if form.get("idempotency_key"):
        if len(state.submitted) >= MAX_REMEMBERED:
            state.submitted.pop(next(iter(state.submitted)))
        state.submitted[key] = started
    stubs = stubs_of(request)
    try:
        answer = await stubs.jobs.RunJob(req, timeout=RPC_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        started.set_exception(exc)
        started.exception()  # retrieved: a later submit tries again
        state.submitted.pop(key, None)
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            return await run_form(request, exc.details() or "", "", form, status=400)
        return rpc_failure(request, exc)
    started.set_result(answer.jobUuid)
    log.info("%s ran job %s: %s", session.cn, answer.jobUuid, req.command)
    raise web.HTTPSeeOther(f"/jobs/{answer.jobUuid}")


async def _job_action(request: web.Request, action: str) -> web.StreamResponse:
    session = session_of(request)
    job_id = request.match_info["job_id"]
    stubs = stubs_of(request)
    calls = {
        "stop": lambda: stubs.jobs.StopJob(pb.StopJobReq(uuid=job_id), timeout=60),
        "cancel": lambda: stubs.jobs.CancelJob(pb.CancelJobReq(uuid=job_id), timeout=RPC_TIMEOUT_S),
        "delete": lambda: stubs.jobs.DeleteJob(pb.DeleteJobReq(uuid=job_id), timeout=RPC_TIMEOUT_S),
    }
    try:
        await calls[action]()
    except grpc.aio.AioRpcError as exc:
        log.info("%s %s job %s refused: %s", session.cn, action, job_id, exc.details())
        return rpc_failure(request, exc)
    log.info("%s: %s job %s", session.cn, action, job_id)
    raise web.HTTPSeeOther("/jobs" if action == "delete" else f"/jobs/{job_id}")


async def stop(request: web.Request) -> web.StreamResponse:
    return await _job_action(request, "stop")


async def cancel(request: web.Request) -> web.StreamResponse:
    return await _job_action(request, "cancel")


async def delete(request: web.Request) -> web.StreamResponse:
    return await _job_action(request, "delete")


async def run_again(request: web.Request) -> web.StreamResponse:
    """The same command, limits and environment as a new job."""
    session = session_of(request)
    job_id = request.match_info["job_id"]
    stubs = stubs_of(request)
    try:
        old = await stubs.jobs.GetJobStatus(pb.GetJobStatusReq(uuid=job_id), timeout=RPC_TIMEOUT_S)
        answer = await stubs.jobs.RunJob(pb.RunJobRequest(
            name=old.name, command=old.command, args=old.args, maxCpu=old.maxCPU,
            cpuCores=old.cpuCores, maxMemory=old.maxMemory, maxIobps=old.maxIOBPS,
            network=old.network, volumes=old.volumes, runtime=old.runtime, workDir=old.workDir,
            environment=old.environment,
        ), timeout=RPC_TIMEOUT_S)  # fmt: skip
    except grpc.aio.AioRpcError as exc:
        return rpc_failure(request, exc)
    log.info("%s ran job %s again as %s", session.cn, job_id, answer.jobUuid)
    raise web.HTTPSeeOther(f"/jobs/{answer.jobUuid}")


async def delete_finished(request: web.Request) -> web.StreamResponse:
    """Every finished job (DeleteAllJobs: running ones stay)."""
    session = session_of(request)
    stubs = stubs_of(request)
    try:
        answer = await stubs.jobs.DeleteAllJobs(pb.DeleteAllJobsReq(), timeout=RPC_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        return rpc_failure(request, exc)
    log.info("%s deleted %d finished jobs", session.cn, answer.deleted_count)
    raise web.HTTPSeeOther("/jobs")


MAX_WORKFLOW_BYTES = 1024 * 1024


async def run_workflow(request: web.Request) -> web.StreamResponse:
    """A workflow from an uploaded YAML file (never a path on the UI's host)."""
    session = session_of(request)
    _, files = split_form(await request.post())
    content = next((f for name, _, f in files if name == "workflow"), None)
    text = content.read(MAX_WORKFLOW_BYTES + 1) if content is not None else b""
    if not text or len(text) > MAX_WORKFLOW_BYTES:
        message = "choose a workflow YAML file (at most 1 MB)"
        return render(request, "error.html", status=400, message=message)
    limit = state_of(request).config.max_upload_bytes
    try:
        uploads = read_uploads([f for f in files if f[0] == "files"], limit)
    except FormError as exc:
        return render(request, "error.html", status=400, message=str(exc))
    request_ = pb.RunWorkflowRequest(
        yamlContent=text.decode("utf-8", errors="replace"), workflowFiles=uploads
    )
    stubs = stubs_of(request)
    try:
        answer = await stubs.jobs.RunWorkflow(request_, timeout=RPC_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        return rpc_failure(request, exc)
    log.info("%s ran workflow %s", session.cn, answer.workflowUuid)
    raise web.HTTPSeeOther(f"/workflows/{answer.workflowUuid}")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/jobs/delete-finished", delete_finished)
    app.router.add_post("/workflows/run", run_workflow)
    app.router.add_post("/run", run_job)
    app.router.add_post("/jobs/{job_id}/stop", stop)
    app.router.add_post("/jobs/{job_id}/cancel", cancel)
    app.router.add_post("/jobs/{job_id}/delete", delete)
    app.router.add_post("/jobs/{job_id}/rerun", run_again)
