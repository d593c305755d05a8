"""What an install reports while it runs: fixed steps, build output, one outcome.

Pure: the installer emits these, the service turns them into
RuntimeInstallationChunks, the CLI draws them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

STEPS = ("validate", "fetch", "unpack", "build", "verify", "install")
TAIL_LINES = 20
# Log chunks held for a reader slower than the build; beyond, output is dropped
# (and said so): a build printing gigabytes must not grow the daemon.
MAX_QUEUED_LOGS = 1024
_TAIL_BYTES = 64 * 1024


def step_number(name: str) -> int:
    """1-based position of a step, as `step` of `total_steps` says it."""
    return STEPS.index(name) + 1


@dataclass(frozen=True)
class Progress:
    step: int
    message: str
    bytes_done: int = 0
    bytes_total: int = 0
    job_id: str = ""  # the step's job, for steps that run as one


@dataclass(frozen=True)
class LogData:
    data: bytes


@dataclass(frozen=True)
class Outcome:
    success: bool
    name: str
    message: str
    build_job_id: str = ""
    install_path: str = ""
    size_bytes: int = 0


Event = Progress | LogData | Outcome


def progress(step: str, message: str, done: int = 0, total: int = 0, job_id: str = "") -> Progress:
    return Progress(step_number(step), f"{step}: {message}", done, total, job_id)


class ByteThrottle:
    """Which byte counts are worth a progress event: a download reports every
    chunk, a client needs about a hundred updates, not thousands."""

    def __init__(self, min_interval_s: float = 0.25, min_fraction: float = 0.01) -> None:
        self._interval = min_interval_s
        self._fraction = min_fraction
        self._last_done = -1
        self._last_at = float("-inf")

    def due(self, done: int, total: int, now: float) -> bool:
        step = max(int(total * self._fraction), 1) if total > 0 else 1 << 20
        if done == total or self._last_done < 0:
            pass
        elif done - self._last_done < step and now - self._last_at < self._interval:
            return False
        self._last_done, self._last_at = done, now
        return True


class LogTail:
    """The last bytes of a log, for the lines a failure quotes."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def add(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        while self._size > _TAIL_BYTES and len(self._chunks) > 1:
            self._size -= len(self._chunks.popleft())

    def lines(self, count: int = TAIL_LINES) -> list[str]:
        text = b"".join(self._chunks).decode("utf-8", "replace")
        return text.splitlines()[-count:]


class InstallRun:
    """One install's events for the one caller that started it. The caller may
    go away (a closed stream); the install goes on, and its events are dropped."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.build_job_id = ""
        self.outcome: Outcome | None = None
        self._queue: asyncio.Queue[Event] | None = asyncio.Queue()
        self._done = asyncio.Event()
        self._dropped = 0

    def emit(self, event: Event) -> None:
        if isinstance(event, Outcome):
            self.outcome = event
            self._done.set()
        if self._queue is not None:
            self._queue.put_nowait(event)

    def emit_log(self, data: bytes) -> None:
        queue = self._queue
        if queue is None:
            return
        if queue.qsize() >= MAX_QUEUED_LOGS:
            self._dropped += len(data)
            return
        if self._dropped:
            note = f"[{self._dropped} bytes of build output not sent: the reader was behind]\n"
            queue.put_nowait(LogData(note.encode()))
            self._dropped = 0
        queue.put_nowait(LogData(data))

    async def events(self) -> AsyncIterator[Event]:
        """Every event until the outcome; leaving early detaches the listener."""
        queue = self._queue
        if queue is None:
            return
        try:
            while True:
                event = await queue.get()
                yield event
                if isinstance(event, Outcome):
                    return
        finally:
            self._queue = None

    async def wait(self) -> Outcome:
        self._queue = None  # a unary caller wants the outcome only
        await self._done.wait()
        assert self.outcome is not None
        return self.outcome
