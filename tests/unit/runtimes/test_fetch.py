"""The downloader against loopback HTTP servers run by the test: archives, redirects,
dead and mute servers, size and sha256 checks, and a bare git repository served
over git's dumb HTTP protocol."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import shutil
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from joblet.errors import FailedPrecondition, PermissionDenied, ResourceExhausted, Unavailable
from joblet.runtimes.fetch import FetchLimits, fetch, fetch_async
from joblet.runtimes.remote import RemoteSource, parse_source

from .hostile_archives import write_tar_gz, write_zip


class Handler(SimpleHTTPRequestHandler):
    """Serves files from the test's directory, plus /go/N redirects to N and
    /off (a redirect to a host string the allowlist does not hold)."""

    def log_message(self, format: str, *args: object) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        if self.path.startswith("/go/"):
            self.send_response(302)
            self.send_header("Location", "/" + self.path[len("/go/") :])
            self.end_headers()
            return
        if self.path.startswith("/off/"):
            port = self.server.server_address[1]
            self.send_response(301)
            self.send_header("Location", f"http://localhost:{port}/{self.path[len('/off/') :]}")
            self.end_headers()
            return
        if self.path == "/endless":
            self.send_response(200)
            self.end_headers()
            with __import__("contextlib").suppress(OSError):
                while True:
                    self.wfile.write(bytes(1 << 16))
            return
        super().do_GET()


class Served:
    def __init__(self, root: Path) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.httpd.seen = []  # type: ignore[attr-defined]
        self.httpd.daemon_threads = True
        self.root = root
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def seen(self) -> list[str]:
        return self.httpd.seen  # type: ignore[attr-defined, no-any-return]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = tmp_path / "www"
    root.mkdir()
    write_tar_gz(root / "rt.tar.gz", [("rt/runtime.yml", "file", os.urandom(300_000))])
    write_zip(root / "rt.zip", [("runtime.yml", "file", b"name: x\n")])
    (root / "page.zip").write_text("<html>not found</html>")
    server = Served(root)
    yield server
    server.close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def limits(served: Served, **kw: float) -> FetchLimits:
    base = {"max_bytes": 10 << 20, "timeout_s": 5.0, "total_timeout_s": 30.0} | kw
    return FetchLimits(
        (served.base,), int(base["max_bytes"]), base["timeout_s"], base["total_timeout_s"]
    )


def archive(url: str) -> RemoteSource:
    return RemoteSource("archive", url)


def test_an_archive_downloads_with_progress_and_its_sha256(served: Served, work: Path) -> None:
    body = (served.root / "rt.tar.gz").read_bytes()
    seen: list[tuple[int, int]] = []
    got = fetch(
        archive(served.base + "go/rt.tar.gz"), str(work), limits(served),
        sha256=hashlib.sha256(body).hexdigest().upper(), progress=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    assert (got.fmt, got.size, got.url) == ("tar.gz", len(body), served.base + "rt.tar.gz")
    assert Path(got.path).read_bytes() == body
    assert seen[-1] == (len(body), len(body))
    assert len(seen) > 1 and all(a[0] < b[0] for a, b in itertools.pairwise(seen))
    (work / "zip").mkdir()
    assert fetch(archive(served.base + "rt.zip"), str(work / "zip"), limits(served)).fmt == "zip"


def test_a_wrong_sha256_leaves_nothing(served: Served, work: Path) -> None:
    with pytest.raises(FailedPrecondition, match=r"sha256 is [0-9a-f]{64}, expected 0{64}"):
        fetch(archive(served.base + "rt.tar.gz"), str(work), limits(served), sha256="0" * 64)
    assert os.listdir(work) == []


def test_a_source_off_the_allowlist_is_never_asked(served: Served, work: Path) -> None:
    other = served.base.replace("127.0.0.1", "localhost") + "rt.tar.gz"
    with pytest.raises(PermissionDenied, match=f"source {other} is not within"):
        fetch(archive(other), str(work), limits(served))
    assert served.seen == []


def test_a_redirect_off_the_allowlist_is_not_followed(served: Served, work: Path) -> None:
    with pytest.raises(
        PermissionDenied, match=r"redirect from .*/off/rt.tar.gz to http://localhost"
    ):
        fetch(archive(served.base + "off/rt.tar.gz"), str(work), limits(served))
    assert [p for p in served.seen if "rt.tar.gz" in p] == ["/off/rt.tar.gz"]
    assert os.listdir(work) == []


def test_a_dead_server_is_unavailable(served: Served, work: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/rt.tar.gz"
    lim = FetchLimits((f"http://127.0.0.1:{port}/",), 1 << 20, 5.0, 30.0)
    with pytest.raises(Unavailable, match=f"fetch {url}: connection refused"):
        fetch(archive(url), str(work), lim)


def test_a_mute_server_times_out(work: Path) -> None:
    with socket.socket() as mute:  # accepts (the kernel's backlog) and never answers
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        base = f"http://127.0.0.1:{mute.getsockname()[1]}/"
        lim = FetchLimits((base,), 1 << 20, timeout_s=0.5, total_timeout_s=30.0)
        with pytest.raises(Unavailable, match=r"no answer within 0.5s"):
            fetch(archive(base + "rt.tar.gz"), str(work), lim)
    assert os.listdir(work) == []


def test_too_big_is_refused_by_length_and_while_reading(served: Served, work: Path) -> None:
    with pytest.raises(ResourceExhausted, match=r"\d+ bytes, over the cap of 100000"):
        fetch(archive(served.base + "rt.tar.gz"), str(work), limits(served, max_bytes=100_000))
    # no Content-Length: the cap stops the read
    with pytest.raises(ResourceExhausted, match="larger than the cap of 1000000 bytes"):
        fetch(archive(served.base + "endless"), str(work), limits(served, max_bytes=1_000_000))
    assert os.listdir(work) == []


def test_the_total_timeout_stops_an_endless_body(served: Served, work: Path) -> None:
    lim = limits(served, max_bytes=1 << 40, total_timeout_s=1.0)
    with pytest.raises(Unavailable, match=r"not done within 1s"):
        fetch(archive(served.base + "endless"), str(work), lim)
    assert os.listdir(work) == []


def test_a_page_that_is_no_archive_is_refused(served: Served, work: Path) -> None:
    with pytest.raises(FailedPrecondition, match=r"not a zip, tar.gz or tar archive"):
        fetch(archive(served.base + "page.zip"), str(work), limits(served))
    with pytest.raises(Unavailable, match="HTTP 404"):
        fetch(archive(served.base + "missing.zip"), str(work), limits(served))


def test_fetch_async_reports_progress_on_the_loop(served: Served, work: Path) -> None:
    async def run() -> list[int]:
        seen: list[int] = []
        loop_thread = threading.get_ident()

        def progress(done: int, total: int) -> None:
            assert threading.get_ident() == loop_thread
            seen.append(done)

        got = await fetch_async(
            archive(served.base + "rt.tar.gz"), str(work), limits(served), progress=progress
        )
        await asyncio.sleep(0)  # the last progress callback, queued by the worker
        assert seen[-1] == got.size
        return seen

    assert asyncio.run(run())


def _git(*args: str, cwd: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    ident = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run(["git", *ident, *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture
def git_repo(served: Served, tmp_path: Path) -> str:
    """A bare repository under the served directory, readable over dumb HTTP."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    src = tmp_path / "src"
    src.mkdir()
    (src / "runtime.yml").write_text("name: from-git\n")
    (src / "build.sh").write_text("#!/bin/sh\n")
    _git("init", "-q", cwd=src)
    _git("add", ".", cwd=src)
    _git("commit", "-q", "-m", "one", cwd=src)
    _git("checkout", "-q", "-b", "other", cwd=src)
    (src / "runtime.yml").write_text("name: other-branch\n")
    _git("commit", "-q", "-am", "two", cwd=src)
    _git("checkout", "-q", "main", cwd=src)
    bare = served.root / "repo.git"
    _git("clone", "-q", "--bare", str(src), str(bare), cwd=tmp_path)
    _git("update-server-info", cwd=bare)
    return served.base + "repo.git"


def _tar_file(path: str, name: str) -> bytes:
    with tarfile.open(path) as tf:
        member = tf.extractfile(name)
        assert member is not None
        return member.read()


def test_a_bare_repository_over_dumb_http_is_cloned(
    git_repo: str, served: Served, work: Path
) -> None:
    source = parse_source(git_repo, "", "https://github.com")
    seen: list[int] = []
    got = fetch(source, str(work), limits(served), progress=lambda d, t: seen.append(d))
    assert (got.fmt, got.url) == ("tar", git_repo)
    assert _tar_file(got.path, "runtime.yml") == b"name: from-git\n"
    assert os.listdir(work) == ["source.tar"]  # the clone is gone
    assert any("info/refs" in p for p in served.seen)

    other = tmp = work / "b"
    tmp.mkdir()
    got = fetch(parse_source(git_repo, "other", ""), str(other), limits(served))
    assert _tar_file(got.path, "runtime.yml") == b"name: other-branch\n"


def test_git_checks_the_allowlist_redirects_and_size(
    git_repo: str, served: Served, work: Path
) -> None:
    off = git_repo.replace("127.0.0.1", "localhost")
    with pytest.raises(PermissionDenied, match=r"not within runtime.allowedSources"):
        fetch(RemoteSource("git", off), str(work), limits(served))
    redirected = served.base + "off/repo.git"
    with pytest.raises(PermissionDenied, match=r"redirect from .* to http://localhost"):
        fetch(RemoteSource("git", redirected), str(work), limits(served))
    with pytest.raises(ResourceExhausted, match="larger than the cap of 100 bytes"):
        fetch(RemoteSource("git", git_repo), str(work), limits(served, max_bytes=100))
    with pytest.raises(Unavailable, match=r"git clone .*: .*nope"):
        fetch(RemoteSource("git", git_repo, "nope"), str(work), limits(served))
    assert os.listdir(work) == []
