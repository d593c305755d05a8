"""The daemon's downloader of remote runtime sources.

It only downloads: an archive over http(s) (`httpfetch`), or a git repository
(`gitfetch`: cloned bare, its tree archived as a tar by git itself). Every URL
and every redirect must lie within `runtime.allowedSources`; the size is capped
while reading; the socket timeout bounds connecting and each read, and a total
timeout the whole fetch; a given sha256 must match. Nothing is unpacked here:
archives are unpacked inside the build sandbox (`joblet.runtimes.unpack`).

Blocking: the daemon runs `fetch` in a worker thread (`fetch_async` does that and
brings progress back to the event loop).
"""

from __future__ import annotations

import asyncio
import os
import threading

from joblet.runtimes.gitfetch import clone_archive
from joblet.runtimes.httpfetch import Fetched, FetchLimits, Progress, download
from joblet.runtimes.remote import RemoteSource

__all__ = ["FetchLimits", "Fetched", "Progress", "fetch", "fetch_async"]


def fetch(
    source: RemoteSource, workdir: str, limits: FetchLimits, *, sha256: str = "",
    progress: Progress | None = None, stop: threading.Event | None = None,
) -> Fetched:  # fmt: skip
    """Fetches `source` into the existing directory `workdir` (the caller removes it)."""
    if source.kind == "git":
        return clone_archive(source, workdir, limits, sha256=sha256, progress=progress, stop=stop)
    return download(
        source.url, os.path.join(workdir, "source.archive"), limits,
        sha256=sha256, progress=progress, stop=stop,
    )  # fmt: skip


async def fetch_async(
    source: RemoteSource, workdir: str, limits: FetchLimits, *, sha256: str = "",
    progress: Progress | None = None,
) -> Fetched:  # fmt: skip
    """`fetch` in a worker thread; progress is called on the event loop. Canceling
    the awaiting task stops the fetch at its next read."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def on_loop(done: int, total: int) -> None:
        if progress is not None:
            loop.call_soon_threadsafe(progress, done, total)

    try:
        return await asyncio.to_thread(
            fetch, source, workdir, limits, sha256=sha256, progress=on_loop, stop=stop
        )
    except asyncio.CancelledError:
        stop.set()
        raise
