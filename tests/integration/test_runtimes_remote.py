"""Installs from a remote source through a real daemon: an HTTP server on the
daemon namespace's loopback serves archives of a shell runtime. The daemon
downloads (within runtime.allowedSources), a sandboxed job unpacks."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.client.progress_text import human_bytes

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon
from .netns import Netns, in_netns
from .runtime_sources import write_runtime

pytestmark = pytest.mark.integration


def tar_gz(directory: Path, top: str, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=f"{top}/{path.relative_to(directory)}", recursive=False)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Server:
    """A threaded HTTP server whose socket lives in `netns`, serving `files`."""

    def __init__(self, netns: str) -> None:
        self.files: dict[str, bytes] = {}
        sock = in_netns(netns, lambda: socket.create_server(("127.0.0.1", 0)))
        self.port = sock.getsockname()[1]
        # Listens but never accepts: the kernel completes the handshake, no one answers.
        self.mute = in_netns(netns, lambda: socket.create_server(("127.0.0.1", 0)))
        self.mute_port = self.mute.getsockname()[1]
        files = self.files

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = files.get(self.path.split("?", 1)[0])  # a static server ignores queries
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler, False)
        self.httpd.socket.close()
        self.httpd.socket = sock
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.mute.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, Server]]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    tmp = tmp_path_factory.mktemp("rtremote")
    world = Netns()
    server = Server(world.netns)
    sources = [server.url("/ok/"), f"http://127.0.0.1:{server.mute_port}/ok/"]
    allowed = {
        "allowedSources": sources, "githubBaseUrl": server.url("/ok"), "fetchTimeout": "4s",
    }  # fmt: skip
    daemon = launch_daemon(tmp, {"runtime": allowed}, world=world)
    yield daemon, server
    server.close()
    daemon.stop()


def stub(d: RunningDaemon) -> pb_grpc.RuntimeServiceStub:
    return pb_grpc.RuntimeServiceStub(d.channel())


def install(d: RunningDaemon, **fields: object) -> list[pb.RuntimeInstallationChunk]:
    req = pb.InstallRuntimeRequest(**fields)  # type: ignore[arg-type]
    return list(stub(d).StreamingInstallRuntimeFromGithub(req, timeout=120))


def result_of(chunks: list[pb.RuntimeInstallationChunk]) -> pb.RuntimeInstallationResult:
    (result,) = [c.result for c in chunks if c.HasField("result")]
    return result


def left_over(d: RunningDaemon, name: str) -> list[str]:
    runtimes = d.root / "runtimes"
    return [p.name for p in runtimes.iterdir() if p.name == name] + [
        p.name for p in (runtimes / ".staging").iterdir()
    ]


def test_owner_repo_archive_installs_with_steps_in_order(
    remote: tuple[RunningDaemon, Server], tmp_path: Path
) -> None:
    daemon, server = remote
    src = write_runtime(tmp_path / "r", "fromgh")
    server.files["/ok/acme/tools/archive/refs/heads/main.tar.gz"] = tar_gz(src, "tools-main")
    chunks = install(daemon, runtimeSpec="fromgh", repository="acme/tools")
    result = result_of(chunks)
    assert result.success, result.message
    steps = [c.progress.step for c in chunks if c.HasField("progress")]
    assert steps == sorted(steps)
    assert set(steps) == {1, 2, 3, 4, 5, 6}
    fetch = [c.progress for c in chunks if c.HasField("progress") and c.progress.bytes_total]
    assert fetch and fetch[-1].bytes_done == fetch[-1].bytes_total
    log = b"".join(c.log.data for c in chunks if c.HasField("log"))
    assert b"unpacked" in log and b"built fromgh" in log
    info = stub(daemon).GetRuntimeInfo(pb.RuntimeInfoReq(runtime="fromgh"))
    assert info.found and info.runtime.available


def test_url_with_sha256_and_path(remote: tuple[RunningDaemon, Server], tmp_path: Path) -> None:
    daemon, server = remote
    src = write_runtime(tmp_path / "r" / "sub" / "dir", "bypath")
    data = tar_gz(tmp_path / "r", "top")
    server.files["/ok/bypath.tar.gz"] = data
    digest = hashlib.sha256(data).hexdigest()
    unary = stub(daemon).InstallRuntimeFromGithub(
        pb.InstallRuntimeRequest(
            runtimeSpec="bypath", repository=server.url("/ok/bypath.tar.gz"), path="sub/dir",
            sha256=digest,
        ),
        timeout=120,
    )  # fmt: skip
    assert unary.status == "installed", unary.message
    assert unary.repository == server.url("/ok/bypath.tar.gz")
    assert unary.resolvedPath == "sub/dir"
    assert src.is_dir()


def test_wrong_sha256_fails_and_leaves_nothing(
    remote: tuple[RunningDaemon, Server], tmp_path: Path
) -> None:
    daemon, server = remote
    server.files["/ok/sha.tar.gz"] = tar_gz(write_runtime(tmp_path / "r", "sha"), "top")
    result = result_of(
        install(daemon, runtimeSpec="sha", repository=server.url("/ok/sha.tar.gz"), sha256="0" * 64)
    )
    assert not result.success
    assert "sha256" in result.message
    assert left_over(daemon, "sha") == []


def test_source_off_the_allowlist_is_refused(remote: tuple[RunningDaemon, Server]) -> None:
    daemon, server = remote
    with pytest.raises(grpc.RpcError) as refused:
        install(daemon, runtimeSpec="off", repository=server.url("/elsewhere/x.tar.gz"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "allowedSources" in str(refused.value.details())


def test_a_hostile_archive_fails_in_the_sandbox(
    remote: tuple[RunningDaemon, Server], tmp_path: Path
) -> None:
    daemon, server = remote
    src = write_runtime(tmp_path / "r", "slip")
    server.files["/ok/slip.tar.gz"] = tar_gz(src, "top", {"top/../../escaped": b"owned"})
    result = result_of(
        install(daemon, runtimeSpec="slip", repository=server.url("/ok/slip.tar.gz"))
    )
    assert not result.success
    assert "unpack" in result.message
    assert left_over(daemon, "slip") == []
    assert not list(daemon.root.rglob("escaped"))


def test_a_name_other_than_the_spec_is_refused(
    remote: tuple[RunningDaemon, Server], tmp_path: Path
) -> None:
    daemon, server = remote
    server.files["/ok/other.tar.gz"] = tar_gz(write_runtime(tmp_path / "r", "realname"), "t")
    result = result_of(
        install(daemon, runtimeSpec="asked", repository=server.url("/ok/other.tar.gz"))
    )
    assert not result.success
    assert "realname" in result.message
    assert left_over(daemon, "asked") == []


def test_a_git_repository_over_dumb_http(
    remote: tuple[RunningDaemon, Server], tmp_path: Path
) -> None:
    daemon, server = remote
    work = write_runtime(tmp_path / "work", "fromgit")
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}

    def git(*args: str, cwd: Path = work) -> None:
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "runtime")
    bare = tmp_path / "fromgit.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    git("update-server-info", cwd=bare)
    for path in bare.rglob("*"):
        if path.is_file():
            server.files[f"/ok/fromgit.git/{path.relative_to(bare)}"] = path.read_bytes()
    chunks = install(daemon, runtimeSpec="fromgit", repository=server.url("/ok/fromgit.git"))
    result = result_of(chunks)
    assert result.success, result.message
    job = daemon.jobs().RunJob(pb.RunJobRequest(command="hello", runtime="fromgit"))
    assert job.jobUuid


def test_rnx_install_from_a_url_shows_the_byte_bar(
    remote: tuple[RunningDaemon, Server], tmp_path: Path
) -> None:
    daemon, server = remote
    data = tar_gz(write_runtime(tmp_path / "r", "byurl"), "top")
    server.files["/ok/byurl.tar.gz"] = data
    digest = hashlib.sha256(data).hexdigest()
    url = server.url("/ok/byurl.tar.gz")
    done = daemon.rnx("runtime", "install", "byurl", "--url", url, "--sha256", digest, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Runtime installed: byurl" in done.stdout
    assert f" / {human_bytes(len(data))}".encode() in done.stderr  # the byte bar
    wrong = daemon.rnx("runtime", "install", "byurl", "--force", "--url", url, "--sha256", "0" * 64)
    assert wrong.returncode == 1
    last = wrong.stderr.decode().splitlines()[-1]  # after the progress lines
    assert last.startswith("rnx: error: installing runtime byurl failed")
    assert "sha256" in last


WHY = {
    "absolute": "archive member '/tmp/joblet-absolute-member': absolute path",
    "symlink": "archive member 'top/etc': symlink to '/etc' leads out of the target",
}


def hostile(kind: str, src: Path) -> bytes:
    extra: dict[str, bytes] = {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(src.iterdir()):
            tar.add(path, arcname=f"top/{path.name}")
        if kind == "absolute":
            extra["/tmp/joblet-absolute-member"] = b"owned"
        elif kind == "symlink":
            link = tarfile.TarInfo("top/etc")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc"
            tar.addfile(link)
            extra["top/etc/joblet-through-link"] = b"owned"
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# Redirects off the allowlist, dead servers, zip links, bombs and 100,000 files:
# test_runtimes_remote_sources.py.
@pytest.mark.parametrize("kind", ["absolute", "symlink"])
def test_hostile_archives_fail_clearly_and_leave_nothing(
    remote: tuple[RunningDaemon, Server], tmp_path: Path, kind: str
) -> None:
    daemon, server = remote
    name = f"hostile-{kind}"
    server.files[f"/ok/{name}.tar.gz"] = hostile(kind, write_runtime(tmp_path / "r", name))
    result = result_of(
        install(daemon, runtimeSpec=name, repository=server.url(f"/ok/{name}.tar.gz"))
    )
    assert not result.success
    assert "the unpack job" in result.message
    assert f"unpack: {WHY[kind]}" in result.message  # the unpacker's own line, from the log
    assert left_over(daemon, name) == []
    assert not Path("/tmp/joblet-absolute-member").exists()
    assert not Path("/etc/joblet-through-link").exists()


def test_a_mute_server_times_out(remote: tuple[RunningDaemon, Server]) -> None:
    daemon, server = remote
    url = f"http://127.0.0.1:{server.mute_port}/ok/x.tar.gz"
    started = time.monotonic()
    result = result_of(install(daemon, runtimeSpec="mute", repository=url))
    assert not result.success
    assert "no answer within 4s" in result.message
    assert time.monotonic() - started < 30
    assert left_over(daemon, "mute") == []
