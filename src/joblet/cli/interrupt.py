"""Ctrl-C while `rnx run -f` follows a job, like `docker run`'s signal proxy:
the first press forwards SIGINT to the job, a second one within
`DETACH_WINDOW_S` detaches (the job goes on running).

`Presses` is the pure decision; `forwarding_interrupts` installs the handler.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

DETACH_WINDOW_S = 2.0


class Detached(Exception):
    """The user pressed Ctrl-C twice: stop following, leave the job running."""


class Presses:
    """Decides what a Ctrl-C means from when the previous one came."""

    def __init__(self, window_s: float = DETACH_WINDOW_S) -> None:
        self._window_s = window_s
        self._last: float | None = None

    def press(self, now: float) -> bool:
        """True: detach; False: forward SIGINT to the job."""
        detach = self._last is not None and now - self._last <= self._window_s
        self._last = now
        return detach


@contextmanager
def forwarding_interrupts(
    forward: Callable[[], None], clock: Callable[[], float] = time.monotonic
) -> Iterator[None]:
    """While inside: SIGINT runs `forward` in a thread of its own (it makes a
    call, which a signal handler must not wait for) or raises `Detached`."""
    presses = Presses()

    def handler(signum: int, frame: FrameType | None) -> None:
        if presses.press(clock()):
            raise Detached
        threading.Thread(target=forward, name="rnx-forward-sigint", daemon=True).start()

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only: nothing to install here
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def ctrl_c_raises() -> Iterator[None]:
    """While inside: Ctrl-C raises KeyboardInterrupt even when rnx was
    started with SIGINT ignored (from a script's background job, say), as
    `rnx run -f` answers it whatever rnx inherited."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
