"""Creating and removing volumes and networks from the resources page:
admin POSTs (the middleware checked role, CSRF and Origin), each logged
with the session's CN."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web

from joblet.api import joblet_pb2 as pb
from joblet.ui.app import session_of, stubs_of
from joblet.ui.pages import RPC_TIMEOUT_S, rpc_failure

log = logging.getLogger("joblet.ui")


def _requests(form: dict[str, str]) -> dict[str, Callable[[Any], Awaitable[Any]]]:
    name = form.get("name", "").strip()
    return {
        "volume-create": lambda s: s.volumes.CreateVolume(pb.CreateVolumeReq(
            name=name, size=form.get("size", "").strip(),
            type=form.get("type", "filesystem").strip()), timeout=RPC_TIMEOUT_S),
        "volume-remove": lambda s: s.volumes.RemoveVolume(
            pb.RemoveVolumeReq(name=name), timeout=RPC_TIMEOUT_S),
        "network-create": lambda s: s.networks.CreateNetwork(
            pb.CreateNetworkReq(name=name, cidr=form.get("cidr", "").strip()),
            timeout=RPC_TIMEOUT_S),
        "network-remove": lambda s: s.networks.RemoveNetwork(
            pb.RemoveNetworkReq(name=name), timeout=RPC_TIMEOUT_S),
    }  # fmt: skip


async def change(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    action = request.match_info["action"]
    call = _requests(form).get(action)
    if call is None:
        raise web.HTTPNotFound()
    try:
        await call(stubs_of(request))
    except grpc.aio.AioRpcError as exc:
        log.info("%s %s %r refused: %s", session.cn, action, form.get("name"), exc.details())
        return rpc_failure(request, exc)
    log.info("%s: %s %r", session.cn, action, form.get("name"))
    raise web.HTTPSeeOther("/resources")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/resources/{action}", change)
