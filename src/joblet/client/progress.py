"""A one-line progress bar for a terminal: bytes sent, rate, time left."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

REDRAW_S = 0.1


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def progress_line(done: int, total: int, elapsed_s: float, width: int = 20) -> str:
    """'[#####     ] 1.0 GiB / 2.0 GiB  512.0 MiB/s  ETA 0:02' (pure, for tests)."""
    filled = width * done // total if total else width
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    left = (total - done) / rate if rate > 0 else 0.0
    eta = f"{int(left) // 60}:{int(left) % 60:02d}" if rate > 0 else "-:--"
    return (
        f"[{'#' * filled}{' ' * (width - filled)}] {human_bytes(done)} / {human_bytes(total)}"
        f"  {human_bytes(rate)}/s  ETA {eta}"
    )


class Progress:
    """Redraws its line on `stream` at most every REDRAW_S; `close` ends it."""

    def __init__(
        self, total: int, stream: TextIO, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.done = 0
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._drawn = float("-inf")  # the first advance draws

    def advance(self, count: int) -> None:
        self.done += count
        now = self._clock()
        if now - self._drawn >= REDRAW_S:
            self._drawn = now
            self._draw(now)

    def restart_at(self, done: int) -> None:
        self.done = done

    def close(self) -> None:
        self._draw(self._clock())
        self._stream.write("\n")
        self._stream.flush()

    def _draw(self, now: float) -> None:
        line = progress_line(self.done, self.total, now - self._start)
        self._stream.write(f"\r\x1b[2K{line}")
        self._stream.flush()
