"""Remote installs through a real daemon, from a loopback HTTP server in the
daemon's namespace: a redirect off runtime.allowedSources, a dead server, and
hostile archives unpacked in the sandbox (a link to /etc then a file through
it, 2 GiB of zeros, 100,000 files): each fails clearly and leaves nothing."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from unit.runtimes.hostile_archives import (
    many_files_tar_gz,
    write_tar_gz,
    write_zip,
    zeros_tar_gz,
    zeros_zip,
)

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon
from .netns import Netns, in_netns

pytestmark = pytest.mark.integration


class Handler(SimpleHTTPRequestHandler):
    """Files under the served directory; /ok/go-off/X redirects off the allowlist."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/ok/go-off/"):
            self.send_response(302)
            self.send_header("Location", "/elsewhere/" + self.path[len("/ok/go-off/") :])
            self.end_headers()
            return
        super().do_GET()


class Server:
    def __init__(self, netns: str, root: Path) -> None:
        sock = in_netns(netns, lambda: socket.create_server(("127.0.0.1", 0)))
        self.port = sock.getsockname()[1]
        handler = partial(Handler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler, False)
        self.httpd.socket.close()
        self.httpd.socket = sock
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


World = tuple[RunningDaemon, Server, Path, int]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    tmp = tmp_path_factory.mktemp("rtsources")
    www = tmp / "www"
    (www / "ok").mkdir(parents=True)
    netns = Netns()
    server = Server(netns.netns, www)
    dead = in_netns(netns.netns, lambda: socket.create_server(("127.0.0.1", 0)))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there any more: connection refused
    allowed = [server.url("/ok/"), f"http://127.0.0.1:{dead_port}/"]
    daemon = launch_daemon(
        tmp, {"runtime": {"allowedSources": allowed, "maxSize": "1GB"}}, world=netns
    )
    yield daemon, server, www, dead_port
    server.close()
    daemon.stop()


def install(d: RunningDaemon, name: str, url: str) -> pb.RuntimeInstallationResult:
    stub = pb_grpc.RuntimeServiceStub(d.channel())
    req = pb.InstallRuntimeRequest(runtimeSpec=name, repository=url)
    chunks = list(stub.StreamingInstallRuntimeFromGithub(req, timeout=300))
    (result,) = [c.result for c in chunks if c.HasField("result")]
    return result


def nothing_left(d: RunningDaemon, name: str) -> None:
    runtimes = d.root / "runtimes"
    assert not (runtimes / name).exists()
    assert list((runtimes / ".staging").iterdir()) == []


def test_a_redirect_off_the_allowlist_fails_and_leaves_nothing(
    world: World, tmp_path: Path
) -> None:
    daemon, server, www, _ = world
    write_tar_gz(www / "elsewhere.tar.gz", [("r/runtime.yml", "file", b"x")])
    result = install(daemon, "redir", server.url("/ok/go-off/x.tar.gz"))
    assert not result.success
    assert "redirect" in result.message and "allowedSources" in result.message
    nothing_left(daemon, "redir")


def test_a_dead_server_fails_clearly(world: World) -> None:
    daemon, _, _, dead_port = world
    result = install(daemon, "dead", f"http://127.0.0.1:{dead_port}/x.tar.gz")
    assert not result.success
    assert "connection refused" in result.message
    nothing_left(daemon, "dead")


def test_hostile_archives_fail_in_the_sandbox_and_leave_nothing(
    world: World, tmp_path: Path
) -> None:
    daemon, server, www, _ = world
    victim = f"joblet-remote-{uuid.uuid4().hex}"
    ok = www / "ok"
    cases = {
        "etc.zip": (
            write_zip(
                ok / "etc.zip", [("etc", "symlink", "/etc"), (f"etc/{victim}", "file", b"x")]
            ),
            "symlink to '/etc' leads out of the target",
        ),
        "zeros.tar.gz": (zeros_tar_gz(ok / "zeros.tar.gz", 2048), "2.0 GiB takes the archive past"),
        "zeros.zip": (zeros_zip(ok / "zeros.zip", 2048), "2.0 GiB takes the archive past"),
        "many.tar.gz": (many_files_tar_gz(ok / "many.tar.gz", 100_000), "more than"),
    }
    for index, (name, (path, why)) in enumerate(cases.items()):
        assert path.stat().st_size < 8 << 20
        result = install(daemon, f"hostile{index}", server.url(f"/ok/{name}"))
        assert not result.success, name
        assert why in result.message, (name, result.message)
        nothing_left(daemon, f"hostile{index}")
    assert not os.path.lexists(f"/etc/{victim}")
    assert not list(daemon.root.rglob(victim))


def test_a_name_off_the_grammar_is_refused_before_any_fetch(world: World) -> None:
    daemon, server, _, _ = world
    stub = pb_grpc.RuntimeServiceStub(daemon.channel())
    with pytest.raises(grpc.RpcError) as refused:
        list(
            stub.StreamingInstallRuntimeFromGithub(
                pb.InstallRuntimeRequest(runtimeSpec="../x", repository=server.url("/ok/x.zip")),
                timeout=60,
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
