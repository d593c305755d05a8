"""Feeding a job's stdin FIFO from a client stream without blocking the loop.

The daemon's end of the FIFO is non-blocking and also a reader (O_RDWR), so a
job that stopped reading or ended never makes a write fail: a full pipe is
waited on, a little at a time, until the job has ended."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable

WAIT_S = 0.2  # how often a full pipe checks whether its job is still there


async def feed(fd: int, chunks: AsyncIterator[bytes], ended: Callable[[], bool]) -> int:
    """Write every chunk to `fd` (a dup the caller closes); bytes written.
    Stops early once `ended()` says the job is gone."""
    written = 0
    async for data in chunks:
        view = memoryview(data)
        while view:
            try:
                count = os.write(fd, view)
            except BlockingIOError:
                if ended():
                    return written
                await _writable(fd, WAIT_S)
                continue
            view, written = view[count:], written + count
    return written


async def _writable(fd: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready, timeout)
    finally:
        loop.remove_writer(fd)
