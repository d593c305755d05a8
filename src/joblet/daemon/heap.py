"""Handing memory back to the kernel after a large request.

A RunJob carrying hundreds of MB of uploads is received by gRPC's threads in
pieces that glibc keeps in its per-thread arenas after they are freed, so the
daemon's RSS would grow by the size of the largest uploads seen even though no
Python object holds them. Trimming once the request is gone returns them."""

from __future__ import annotations

import asyncio

from joblet.isolation.libc import malloc_trim

# Long enough for gRPC to drop the request once the answer is sent.
TRIM_DELAY_S = 0.2


def trim_soon() -> None:
    """Trim the C heap now and again shortly, once the current request is freed."""
    malloc_trim()
    asyncio.get_running_loop().call_later(TRIM_DELAY_S, malloc_trim)
