"""The aiohttp application: middleware (security headers, Host, Origin, CSRF,
sessions, roles) and the routes of the pages, actions and event streams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from aiohttp import web

from joblet.daemon.revocation_watch import RevocationWatch
from joblet.ui import guard
from joblet.ui.config import UiConfig
from joblet.ui.feeds import FeedHub
from joblet.ui.sessions import COOKIE_NAME, Session, SessionStore
from joblet.ui.tokens import Redeemer
from joblet.ui.upstream import RoleStubs, Upstream

log = logging.getLogger("joblet.ui")
HERE = Path(__file__).parent
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = ("/login", "/static/")
FORM_SLACK_BYTES = 1024 * 1024
# POSTs a viewer may make: they change the session, not the node
VIEWER_POSTS = ("/logout", "/nodes/select")


@dataclass
class UiState:
    config: UiConfig
    upstream: Upstream
    redeemer: Redeemer
    sessions: SessionStore = field(default_factory=SessionStore)
    feeds: FeedHub = field(default_factory=FeedHub)
    clock: Callable[[], float] = time.time
    # the CRL of `joblet certs revoke`, for sign-in with a client certificate
    revocations: RevocationWatch | None = None
    # session and idempotency key -> the job its first submission started
    submitted: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    # Read into memory at start: after dropping root the package's files may
    # not be readable (a checkout under /root, say).
    templates: jinja2.Environment = field(
        default_factory=lambda: jinja2.Environment(
            loader=jinja2.DictLoader(
                {p.name: p.read_text() for p in (HERE / "templates").glob("*.html")}
            ),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
    )
    static: dict[str, bytes] = field(
        default_factory=lambda: {
            p.relative_to(HERE / "static").as_posix(): p.read_bytes()
            for p in (HERE / "static").rglob("*")
            if p.is_file()
        }
    )


STATE: web.AppKey[UiState] = web.AppKey("state", UiState)


def state_of(request: web.Request) -> UiState:
    return request.app[STATE]


def session_of(request: web.Request) -> Session:
    session: Session = request["session"]
    return session


def stubs_of(request: web.Request) -> RoleStubs:
    """The API over the session's role and node."""
    session = session_of(request)
    return state_of(request).upstream.as_role(session.role, session.node)


def refuse(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, streams and errors too, before its headers go out."""
    for name, value in guard.SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def origin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host must be one of ours (no DNS rebinding); a POST must come from our
    own origin; nothing else but GET, HEAD and POST (no CORS pre-flight)."""
    state = state_of(request)
    config = state.config
    if not guard.host_allowed(request.host, config.allowed_hosts(), config.port):
        log.warning("refused Host %r from %s", request.host, request.remote)
        return refuse(421, "unknown host name")
    if request.method in guard.SAFE_METHODS:
        return await handler(request)
    if request.method != "POST":
        return refuse(405, "method not allowed")
    if not guard.same_origin(request.headers.get("Origin"), config.scheme, request.host):
        log.warning("refused a cross-origin POST %s (Origin %r)", request.path,
                    request.headers.get("Origin"))  # fmt: skip
        return refuse(403, "cross-origin request refused")
    return await handler(request)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but the login needs a session; every POST its CSRF token;
    only admins may POST (anything but signing out)."""
    if request.path.startswith(PUBLIC_PATHS):
        return await handler(request)
    state = state_of(request)
    session = state.sessions.get(request.cookies.get(COOKIE_NAME), state.clock())
    if session is None:
        if request.method == "GET" and "text/event-stream" not in request.headers.get("Accept", ""):
            raise web.HTTPSeeOther("/login")
        return refuse(401, "sign in first")
    request["session"] = session
    if request.method == "POST":
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            limit = state.config.max_upload_bytes
            return refuse(413, f"the form is larger than the UI accepts ({limit} bytes of "
                          "files: ui.maxUploadBytes)")  # fmt: skip
        sent = request.headers.get("X-CSRF-Token") or str(form.get("csrf", ""))
        if not guard.csrf_ok(sent, session.csrf):
            log.warning("refused POST %s without a valid CSRF token (%s)", request.path, session.cn)
            return refuse(403, "missing or wrong CSRF token")
        if not session.is_admin and request.path not in VIEWER_POSTS:
            log.warning("refused POST %s by viewer %s", request.path, session.cn)
            return refuse(403, "viewers may not change anything")
    return await handler(request)


def render(
    request: web.Request, template: str, status: int = 200, **values: object
) -> web.Response:
    state = state_of(request)
    session = request.get("session")
    page = state.templates.get_template(template).render(
        session=session, path=request.path, nodes=state.upstream.names, **values
    )
    return web.Response(status=status, text=page, content_type="text/html")


CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = state_of(request).static.get(name)
    kind = CONTENT_TYPES.get(Path(name).suffix, "text/plain")
    if body is None:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "public, max-age=3600"}
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=headers)


def build_app(state: UiState) -> web.Application:
    from joblet.ui import (
        actions,
        cert_login,
        events,
        log_pages,
        node_pages,
        pages,
        resource_actions,
        runtime_actions,
    )

    app = web.Application(
        middlewares=[origin_middleware, session_middleware],
        # the run form's files, and room for its other fields
        client_max_size=state.config.max_upload_bytes + FORM_SLACK_BYTES,
    )
    app[STATE] = state
    app.on_response_prepare.append(add_security_headers)
    pages.add_routes(app)
    actions.add_routes(app)
    runtime_actions.add_routes(app)  # before resource_actions' /resources/{action}
    resource_actions.add_routes(app)
    events.add_routes(app)
    node_pages.add_routes(app)
    cert_login.add_routes(app)
    log_pages.add_routes(app)
    app.router.add_get("/static/{name:.+}", static_file)

    async def close(_: web.Application) -> None:
        await state.feeds.aclose()
        await state.upstream.close()

    app.on_cleanup.append(close)
    return app
