"""Downloading one archive over http(s): every URL and redirect within the
allowed sources, size capped while reading, socket and total timeouts, sha256
checked. Blocking; shared limits and result shapes for the git fetcher too."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import IO

from joblet.errors import FailedPrecondition, ResourceExhausted, Unavailable
from joblet.runtimes.archive import ArchiveError
from joblet.runtimes.remote import check_sha256, require_allowed
from joblet.runtimes.unpack import detect

Progress = Callable[[int, int], None]  # (bytes so far, total bytes or 0 when unknown)

CHUNK = 64 << 10
_USER_AGENT = "joblet-runtime-fetch"


@dataclass(frozen=True)
class FetchLimits:
    allowed: tuple[str, ...]  # runtime.allowedSources
    max_bytes: int
    timeout_s: float = 30.0  # connecting, and each read
    total_timeout_s: float = 600.0


@dataclass(frozen=True)
class Fetched:
    path: str  # the downloaded archive
    fmt: str  # "zip", "tar.gz" or "tar"
    url: str  # where it finally came from, after redirects
    sha256: str
    size: int


class Deadline:
    def __init__(self, limits: FetchLimits, url: str, stop: threading.Event | None) -> None:
        self.end = time.monotonic() + limits.total_timeout_s
        self.limits = limits
        self.url = url
        self.stop = stop

    def check(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Unavailable(f"fetch {self.url}: canceled")
        if time.monotonic() > self.end:
            raise Unavailable(f"fetch {self.url}: not done within {self.limits.total_timeout_s:g}s")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL within the allowed sources."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = allowed

    def redirect_request(  # noqa: PLR0917 (the base class's signature)
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        require_allowed(newurl, self.allowed, what=f"redirect from {req.full_url} to")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_url(url: str, limits: FetchLimits) -> IO[bytes]:
    """A GET of an allowed URL, redirects checked; errors as Unavailable."""
    require_allowed(url, limits.allowed)
    opener = urllib.request.build_opener(_CheckedRedirects(limits.allowed))
    request = urllib.request.Request(
        url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    )
    try:
        response: IO[bytes] = opener.open(request, timeout=limits.timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise Unavailable(f"fetch {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise Unavailable(f"fetch {url}: {_reason(exc.reason, limits)}") from exc
    except (TimeoutError, OSError) as exc:
        raise Unavailable(f"fetch {url}: {_reason(exc, limits)}") from exc
    return response


def _reason(reason: object, limits: FetchLimits) -> str:
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {limits.timeout_s:g}s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def _copy(
    response: IO[bytes], out: int, url: str, *, limits: FetchLimits, deadline: Deadline,
    total: int, progress: Progress | None,
) -> tuple[int, str]:  # fmt: skip
    digest = hashlib.sha256()
    done = 0
    while True:
        deadline.check()
        try:
            chunk = response.read(CHUNK)
        except (TimeoutError, OSError) as exc:
            raise Unavailable(f"fetch {url}: {_reason(exc, limits)}") from exc
        if not chunk:
            break
        done += len(chunk)
        if done > limits.max_bytes:
            raise ResourceExhausted(f"fetch {url}: larger than the cap of {limits.max_bytes} bytes")
        digest.update(chunk)
        os.write(out, chunk)
        if progress is not None:
            progress(done, total)
    if total and done != total:
        raise Unavailable(f"fetch {url}: got {done} of {total} bytes")
    return done, digest.hexdigest()


def download(
    url: str, dest: str, limits: FetchLimits, *, sha256: str = "",
    progress: Progress | None = None, stop: threading.Event | None = None,
) -> Fetched:  # fmt: skip
    """Downloads one archive URL to the new file `dest`."""
    expected = check_sha256(sha256)
    deadline = Deadline(limits, url, stop)
    response = open_url(url, limits)
    try:
        final = getattr(response, "url", url)
        total = int(response.headers.get("Content-Length") or 0)  # type: ignore[attr-defined]
        if total > limits.max_bytes:
            raise ResourceExhausted(
                f"fetch {url}: {total} bytes, over the cap of {limits.max_bytes}"
            )
        out = os.open(
            dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            size, digest = _copy(
                response, out, url, limits=limits, deadline=deadline, total=total, progress=progress
            )
        finally:
            os.close(out)
    except BaseException:
        remove_quietly(dest)
        raise
    finally:
        response.close()
    return finish(dest, final, size, digest, expected)


def finish(path: str, url: str, size: int, digest: str, expected: str) -> Fetched:
    try:
        if expected and digest != expected:
            raise FailedPrecondition(f"fetch {url}: sha256 is {digest}, expected {expected}")
        try:
            fmt = detect(path)
        except ArchiveError as exc:
            raise FailedPrecondition(f"fetch {url}: {exc}") from exc
    except BaseException:
        remove_quietly(path)
        raise
    return Fetched(path, fmt, url, digest, size)


def remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
