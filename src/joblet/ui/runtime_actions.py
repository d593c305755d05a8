"""Installing and testing runtimes from the resources page: admin POSTs
(the middleware checked role, CSRF and Origin), made with the session's
certificate, each logged with its CN. An install is a streaming response:
the page grows by the install's progress and build log as the daemon sends
them (the same progress lines as `rnx runtime install`)."""

from __future__ import annotations

import logging
from html import escape
from typing import Any

import grpc
from aiohttp import web

from joblet.api import joblet_pb2 as pb
from joblet.client.progress_text import ProgressView
from joblet.ui.app import render, session_of, state_of, stubs_of
from joblet.ui.forms import FormError
from joblet.ui.pages import rpc_failure
from joblet.ui.upload_form import read_uploads, split_form

log = logging.getLogger("joblet.ui")
INSTALL_TIMEOUT_S = 3600.0
TEST_TIMEOUT_S = 600.0
SPEC_FILE = "runtime.yml"
STREAM_MARK = "\x00stream\x00"  # where the template's page is cut for the stream


def install_call(stubs: Any, form: dict[str, str], files: list[pb.FileUpload]) -> Any:
    """The streaming install the form asks for: from a repository when one is
    named, else from the uploaded files (runtime.yml among them)."""
    name, force = form.get("name", "").strip(), form.get("force") == "on"
    repository = form.get("repository", "").strip()
    if repository:
        req = pb.InstallRuntimeRequest(
            runtimeSpec=name, repository=repository, branch=form.get("branch", "").strip(),
            path=form.get("path", "").strip(), forceReinstall=force,
            sha256=form.get("sha256", "").strip(),
        )  # fmt: skip
        return stubs.runtimes.StreamingInstallRuntimeFromGithub(req, timeout=INSTALL_TIMEOUT_S)
    if not any(f.path == SPEC_FILE for f in files):
        raise FormError("files", f"choose the runtime's files, {SPEC_FILE} among them "
                        "(or name a repository)")  # fmt: skip
    runtime_files = [
        pb.RuntimeFile(path=f.path, content=f.content, executable=f.path.endswith(".sh"))
        for f in files
    ]
    local = pb.InstallRuntimeFromLocalRequest(runtimeSpec=name, files=runtime_files,
                                              forceReinstall=force)  # fmt: skip
    return stubs.runtimes.StreamingInstallRuntimeFromLocal(local, timeout=INSTALL_TIMEOUT_S)


def chunk_html(chunk: Any, view: ProgressView) -> str:
    """One chunk of the install's stream as HTML (text, never markup)."""
    kind = chunk.WhichOneof("chunk_type")
    if kind == "progress":
        text = view.draw(chunk.progress)
        return "".join(f'<li class="progress">{escape(line)}</li>\n'
                       for line in text.splitlines() if line)  # fmt: skip
    if kind == "log":
        data = chunk.log.data.decode("utf-8", errors="replace")
        return f'<li class="log"><pre>{escape(data)}</pre></li>\n'
    result = chunk.result
    if result.success:
        return (f'<li class="result ok" id="install-result">Runtime installed: '
                f"{escape(result.runtime_spec)} ({result.size_bytes} bytes)</li>\n")  # fmt: skip
    job = f" (build job {result.build_job_uuid})" if result.build_job_uuid else ""
    failed = f"Installing runtime {result.runtime_spec} failed{job}: {result.message}"
    return f'<li class="result error" id="install-result">{escape(failed)}</li>\n'


async def install(request: web.Request) -> web.StreamResponse:
    state, session = state_of(request), session_of(request)
    form, posted = split_form(await request.post())
    try:
        files = read_uploads([f for f in posted if f[0] == "files"], state.config.max_upload_bytes)
        call = install_call(stubs_of(request), form, files)
    except FormError as exc:
        return render(request, "error.html", status=400, message=str(exc))
    chunks = call.__aiter__()
    try:  # the daemon's refusal comes first: then it is the page's status
        first = await anext(chunks, None)
    except grpc.aio.AioRpcError as exc:
        log.info("%s install runtime %r refused: %s", session.cn, form.get("name"), exc.details())
        return rpc_failure(request, exc)
    log.info("%s installs runtime %r", session.cn, form.get("name") or form.get("repository"))
    page = state.templates.get_template("runtime_install.html").render(
        session=session, path=request.path, nodes=state.upstream.names, stream=STREAM_MARK
    )
    head, _, tail = page.partition(STREAM_MARK)
    response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8",
                                           "X-Accel-Buffering": "no"})  # fmt: skip
    await response.prepare(request)
    try:
        await response.write(head.encode())
        await _follow(response, first, chunks)
        await response.write(tail.encode())
        await response.write_eof()
    except ConnectionError:  # the browser left; the daemon's build job goes on
        log.info("%s left the install of runtime %r", session.cn, form.get("name"))
    return response


async def _follow(response: web.StreamResponse, first: Any, chunks: Any) -> None:
    """Each chunk into the page as it comes; a failure mid-stream as its last line."""
    view = ProgressView(terminal=False)
    try:
        chunk = first
        while chunk is not None:
            await response.write(chunk_html(chunk, view).encode())
            chunk = await anext(chunks, None)
    except grpc.aio.AioRpcError as exc:
        message = escape(exc.details() or str(exc.code()))
        await response.write(
            f'<li class="result error" id="install-result">{message}</li>'.encode()
        )


async def run_test(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    name = str((await request.post()).get("name", "")).strip()
    try:
        res = await stubs_of(request).runtimes.TestRuntime(
            pb.RuntimeTestReq(runtime=name), timeout=TEST_TIMEOUT_S
        )
    except grpc.aio.AioRpcError as exc:
        return rpc_failure(request, exc)
    log.info("%s tested runtime %r: exit %d", session.cn, name, res.exitCode)
    return render(request, "runtime_test.html", name=name, result=res)


def add_routes(app: web.Application) -> None:
    # before /resources/{action}: these are not volume or network changes
    app.router.add_post("/resources/runtime-install", install)
    app.router.add_post("/resources/runtime-test", run_test)
