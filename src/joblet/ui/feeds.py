"""Live data fanned out to browsers: one upstream gRPC stream per job and
topic, however many browsers follow it.

A `LogFeed` keeps the tail of a job's output (its last lines) with byte
offsets counted from the start of its upstream stream; each browser reads
from its own offset at its own pace, so a slow browser gets what piled up in
one coalesced event and never blocks the stream or another browser. An event
id is `GENERATION:OFFSET`; a reconnect (Last-Event-ID) resumes exactly there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

TAIL_LINES = 10_000
MAX_BYTES = 16 * 1024 * 1024
LINGER_S = 30.0  # a feed nobody follows closes after this long
MAX_SAMPLES = 2_000


@dataclass
class Tail:
    """The last lines of a byte stream, with absolute offsets. Pure."""

    max_lines: int = TAIL_LINES
    max_bytes: int = MAX_BYTES
    base: int = 0  # offset of data[0]
    base_line: int = 0  # lines dropped before data[0]: the line data[0] is in
    data: bytearray = field(default_factory=bytearray)

    @property
    def end(self) -> int:
        return self.base + len(self.data)

    def append(self, chunk: bytes) -> None:
        self.data += chunk
        excess = self.data.count(b"\n") - self.max_lines
        cut = 0
        while excess > 0:
            cut = self.data.index(b"\n", cut) + 1
            excess -= 1
        if len(self.data) - cut > self.max_bytes:
            cut = len(self.data) - self.max_bytes
        if cut:
            self.base_line += self.data.count(b"\n", 0, cut)
            del self.data[:cut]
            self.base += cut

    @property
    def lines(self) -> int:
        """Whole lines so far (counted from the stream's start)."""
        return self.base_line + self.data.count(b"\n")

    def line_at(self, offset: int) -> int:
        """The number of the line byte `offset` (>= base) is in."""
        return self.base_line + self.data.count(b"\n", 0, max(offset - self.base, 0))

    def last_lines(self, count: int) -> list[bytes]:
        """The last `count` whole lines kept (fewer if fewer are), without
        their newline."""
        end = self.data.rfind(b"\n")
        if end < 0 or count <= 0:
            return []
        pieces = bytes(self.data[:end]).split(b"\n")
        # after a cut the first piece may be the end of a line, not all of it
        return (pieces[1:] if self.base else pieces)[-count:]

    def read(self, offset: int, whole_lines: bool) -> tuple[int, bytes]:
        """(where the bytes start, bytes) from `offset` on (or from the oldest
        kept, if `offset` is older); only up to the last newline unless not
        `whole_lines`, so a line is never split across events."""
        start = max(offset, self.base)
        piece = bytes(self.data[start - self.base :])
        if whole_lines:
            piece = piece[: piece.rfind(b"\n") + 1]
        return start, piece


def parse_event_id(text: str | None, generation: str) -> int:
    """The byte offset a browser already has (0 for another generation)."""
    gen, _, offset = (text or "").partition(":")
    if gen != generation or not offset.isdigit():
        return 0
    return int(offset)


class LogFeed:
    """One job's output from one upstream GetJobLogs stream."""

    def __init__(self, open_stream: Callable[[], AsyncIterator[bytes]]) -> None:
        self.generation = secrets.token_hex(4)
        self.tail = Tail()
        self.done = False
        self.error = ""
        self.followers = 0
        self._changed = asyncio.Condition()
        self._open = open_stream

    async def run(self) -> None:
        try:
            async for chunk in self._open():
                self.tail.append(chunk)
                async with self._changed:
                    self._changed.notify_all()
        except Exception as exc:  # the daemon's refusal ends the feed, not the UI
            details = getattr(exc, "details", None)  # a gRPC status's message
            self.error = str(details() if callable(details) else exc)
            log.info("log feed ended: %s", self.error)
        finally:
            self.done = True
            async with self._changed:
                self._changed.notify_all()

    async def read(self, offset: int, timeout: float) -> tuple[int, bytes]:
        """What lies past `offset`, waiting up to `timeout` for more."""
        async with self._changed:  # checked under the lock: no wake-up is lost
            start, piece = self.tail.read(offset, whole_lines=not self.done)
            if piece or self.done:
                return start, piece
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        return self.tail.read(offset, whole_lines=not self.done)


class SampleFeed:
    """One job's metric samples from one upstream stream; browsers read by
    index, so a slow one gets every sample it missed in one event."""

    def __init__(self, open_stream: Callable[[], AsyncIterator[Any]]) -> None:
        self.samples: list[Any] = []
        self.dropped = 0
        self.done = False
        self.followers = 0
        self._changed = asyncio.Condition()
        self._open = open_stream

    async def run(self) -> None:
        try:
            async for sample in self._open():
                self.samples.append(sample)
                if len(self.samples) > MAX_SAMPLES:
                    del self.samples[0]
                    self.dropped += 1
                async with self._changed:
                    self._changed.notify_all()
        except Exception as exc:
            log.info("metrics feed ended: %s", exc)
        finally:
            self.done = True
            async with self._changed:
                self._changed.notify_all()

    async def read(self, seen: int, timeout: float) -> tuple[int, list[Any]]:
        """(new count seen, samples after `seen`)."""
        async with self._changed:
            if self.dropped + len(self.samples) <= seen and not self.done:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
        first = max(seen - self.dropped, 0)
        return self.dropped + len(self.samples), self.samples[first:]


class FeedHub:
    """Feeds by key; a feed starts with its first follower and closes
    `LINGER_S` after its last one leaves (a reconnect within that resumes it)."""

    def __init__(self, linger_s: float = LINGER_S) -> None:
        self._feeds: dict[str, Any] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closers: dict[str, asyncio.TimerHandle] = {}
        self._linger_s = linger_s
        self.upstreams_opened = 0

    def __len__(self) -> int:
        return len(self._feeds)

    def get(self, key: str) -> Any:
        """The feed of `key` if someone follows it (or did a moment ago)."""
        return self._feeds.get(key)

    @contextlib.asynccontextmanager
    async def follow(self, key: str, make: Callable[[], Any]) -> AsyncIterator[Any]:
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = make()
            self.upstreams_opened += 1
            log.info("upstream stream opened: %s", key)
            self._tasks[key] = asyncio.create_task(feed.run(), name=f"feed-{key}")
        closer = self._closers.pop(key, None)
        if closer is not None:
            closer.cancel()
        feed.followers += 1
        try:
            yield feed
        finally:
            feed.followers -= 1
            if feed.followers == 0:
                loop = asyncio.get_running_loop()
                self._closers[key] = loop.call_later(self._linger_s, self._close, key)

    def _close(self, key: str) -> None:
        self._closers.pop(key, None)
        self._feeds.pop(key, None)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    async def aclose(self) -> None:
        for closer in self._closers.values():
            closer.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._feeds.clear()
        self._tasks.clear()
        self._closers.clear()
