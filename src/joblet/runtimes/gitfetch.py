"""Fetching a runtime's sources from a git repository over http(s).

The repository is cloned bare (no working tree, so no checkout, hooks, filters or
submodules), with git's own configuration files ignored, only the http and https
transports allowed and redirects off: the URL is first probed here, redirects
checked against the allowed sources, and git is handed the final one. Its tree is
then written as a plain tar by `git archive`, so it goes through the same checked
unpacking as any other archive.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from joblet.errors import ResourceExhausted, Unavailable
from joblet.runtimes.httpfetch import (
    CHUNK,
    Deadline,
    Fetched,
    FetchLimits,
    Progress,
    finish,
    open_url,
    remove_quietly,
)
from joblet.runtimes.remote import RemoteSource, check_sha256

_PROBE = "/info/refs"
_SMART = "application/x-git-upload-pack-advertisement"
_POLL_S = 0.1


def _git_config(limits: FetchLimits) -> list[str]:
    pairs = {
        "protocol.allow": "never",
        "protocol.http.allow": "always",
        "protocol.https.allow": "always",
        "http.followRedirects": "false",
        "core.hooksPath": "/dev/null",
        "transfer.fsckObjects": "true",
        "credential.helper": "",
        "http.lowSpeedLimit": "1",
        "http.lowSpeedTime": str(max(1, int(limits.timeout_s))),
    }
    return [arg for key, value in pairs.items() for arg in ("-c", f"{key}={value}")]


def _git_env(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "false",
        "GIT_ALLOW_PROTOCOL": "http:https",
        "GIT_PROTOCOL_FROM_USER": "0",
    }


def probe(url: str, limits: FetchLimits) -> tuple[str, bool]:
    """The repository's URL after checked redirects, and whether it speaks git's
    smart protocol (a dumb one cannot serve a shallow clone)."""
    parts = urlsplit(url)
    info = urlunsplit(
        parts._replace(path=parts.path.rstrip("/") + _PROBE, query="service=git-upload-pack")
    )
    response = open_url(info, limits)
    try:
        final = urlsplit(getattr(response, "url", info))
        smart = response.headers.get_content_type() == _SMART  # type: ignore[attr-defined]
        response.read(1 << 20)
    finally:
        response.close()
    if not final.path.endswith(_PROBE):
        raise Unavailable(f"git {url}: redirected to {urlunsplit(final)}, not a repository")
    base = urlunsplit(final._replace(path=final.path[: -len(_PROBE)], query=""))
    return base, smart


def _tree_bytes(path: str) -> int:
    total = 0
    for top, _, files in os.walk(path):
        for name in files:
            # git renames its temporary files as it goes
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(top, name)).st_size
    return total


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _clone(
    url: str, branch: str, dest: str, limits: FetchLimits, *, shallow: bool,
    deadline: Deadline, progress: Progress | None, home: str,
) -> None:  # fmt: skip
    argv = ["git", *_git_config(limits), "clone", "--bare", "--quiet", "--no-tags"]
    argv += ["--depth", "1"] if shallow else ["--single-branch"]
    argv += ["--branch", branch] if branch else []
    argv += ["--", url, dest]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            argv, env=_git_env(home), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err, start_new_session=True,
        )  # fmt: skip
        try:
            while proc.poll() is None:
                deadline.check()
                size = _tree_bytes(dest)
                if size > limits.max_bytes:
                    raise ResourceExhausted(
                        f"git {url}: larger than the cap of {limits.max_bytes} bytes"
                    )
                if progress is not None:
                    progress(size, 0)
                time.sleep(_POLL_S)
        finally:
            if proc.returncode is None:
                _kill(proc)
        if proc.returncode != 0:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines() or ["failed"]
            raise Unavailable(f"git clone {url}: {lines[-1]}")


def _archive(
    clone: str, dest: str, limits: FetchLimits, deadline: Deadline, home: str
) -> tuple[int, str]:
    argv = ["git", f"--git-dir={clone}", "archive", "--format=tar", "HEAD"]
    proc = subprocess.Popen(
        argv, env=_git_env(home), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    digest, size = hashlib.sha256(), 0
    try:
        with open(dest, "xb") as out:
            while chunk := proc.stdout.read(CHUNK):
                deadline.check()
                size += len(chunk)
                if size > limits.max_bytes:
                    raise ResourceExhausted(
                        f"git archive: larger than the cap of {limits.max_bytes} bytes"
                    )
                digest.update(chunk)
                out.write(chunk)
        if proc.wait() != 0:
            raise Unavailable("git archive failed")
    except BaseException:
        remove_quietly(dest)
        raise
    finally:
        proc.stdout.close()
        if proc.returncode is None:
            _kill(proc)
    return size, digest.hexdigest()


def clone_archive(
    source: RemoteSource, workdir: str, limits: FetchLimits, *, sha256: str = "",
    progress: Progress | None = None, stop: threading.Event | None = None,
) -> Fetched:  # fmt: skip
    """Clones `source` (its branch, one commit where the server allows) and
    archives its tree as `workdir/source.tar`."""
    expected = check_sha256(sha256)
    if shutil.which("git", path="/usr/bin:/bin") is None:
        raise Unavailable("git sources need git on the host")
    deadline = Deadline(limits, source.url, stop)
    base, smart = probe(source.url, limits)
    clone = os.path.join(workdir, "clone.git")
    try:
        _clone(
            base, source.branch, clone, limits, shallow=smart,
            deadline=deadline, progress=progress, home=workdir,
        )  # fmt: skip
        tar = os.path.join(workdir, "source.tar")
        size, digest = _archive(clone, tar, limits, deadline=deadline, home=workdir)
    finally:
        shutil.rmtree(clone, ignore_errors=True)
    return finish(tar, base, size, digest, expected)
