"""The IPC side of persist: length-delimited `Request` frames in, `Ack` frames out.

The event loop only reads (large reads) and cuts the stream into frames;
everything else happens on the writer thread, one group of frames per call:
all that arrived while the previous group was being compressed. Under load
the groups grow, so the cost per frame (a thread hand-off, an acknowledgement)
shrinks just when it matters. The next group is queued for the writer thread
before the previous one is acknowledged, so it never waits for the event
loop to be scheduled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from concurrent.futures import Executor
from pathlib import Path

from joblet.api import persist_pb2 as pb
from joblet.ipc.framing import MAX_FRAME, FrameError, decode_varint, encode_frame
from joblet.persist.ingest import Connection, GroupOutcome, Ingest

log = logging.getLogger(__name__)

DRAIN_ABOVE = 1 << 20
READ_BYTES = 1 << 20
GROUP_BYTES = 2 << 20  # at most this much per call to the writer thread
BACKLOG_BYTES = 8 << 20  # read no further while this much waits (the sender waits)


def remove_stale_socket(path: Path) -> None:
    """A socket left by a previous run would make bind() fail with EADDRINUSE."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def start_ipc_server(path: Path, ingest: Ingest, executor: Executor) -> asyncio.Server:
    """Serve IPC on `path`; requests are applied on `executor` (one thread keeps
    them in order) so compression overlaps reading the next frames."""
    remove_stale_socket(path)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Only the shutdown cancels these (asyncio.run ends the tasks still
        # open). Python 3.11's asyncio.Server calls task.exception() on them,
        # which raises for a cancelled task and logs a spurious traceback, so
        # the task must end normally.
        with contextlib.suppress(asyncio.CancelledError):
            await serve_connection(ingest, executor, reader, writer)

    server = await asyncio.start_unix_server(handle, path=str(path), limit=READ_BYTES)
    os.chmod(path, 0o600)
    return server


class FrameSplitter:
    """Cuts a byte stream into frame bodies: a varint length, then the body."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._max_frame = max_frame
        self._parts: list[bytes] = []  # received, not yet cut into frames
        self._have = 0
        self._need = 1  # bytes to have before cutting again is worth trying

    @property
    def inside_frame(self) -> bool:
        return self._have > 0

    def feed(self, data: bytes) -> list[bytes]:
        """The frames `data` completes, in order; raises FrameError."""
        self._parts.append(data)
        self._have += len(data)
        if self._have < self._need:
            return []  # a large frame still arriving: no copying meanwhile
        buf = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        frames: list[bytes] = []
        pos, end = 0, len(buf)
        need = 1
        while pos < end:
            length, start = decode_varint(buf, pos, end)
            if start < 0:
                need = end - pos + 1
                break
            if length > self._max_frame:
                raise FrameError(
                    f"frame of {length} bytes exceeds the {self._max_frame} byte limit"
                )
            if end - start < length:
                need = start - pos + length
                break
            frames.append(buf[start : start + length])
            pos = start + length
        rest = buf[pos:] if pos < end else b""
        self._parts = [rest] if rest else []
        self._have, self._need = len(rest), need
        return frames


class _Backlog:
    """Frames read but not applied yet; bounded in bytes."""

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque()
        self.size = 0
        self.ended = False
        self.changed = asyncio.Event()

    def add(self, frames: list[bytes]) -> None:
        self.frames.extend(frames)
        self.size += sum(len(f) for f in frames)
        self.changed.set()

    def end(self) -> None:
        self.ended = True
        self.changed.set()

    async def wait_for_room(self) -> None:
        while self.size > BACKLOG_BYTES:
            self.changed.clear()
            await self.changed.wait()

    async def take(self) -> list[bytes]:
        """Up to GROUP_BYTES of frames (at least one); [] once the stream ended."""
        while not self.frames and not self.ended:
            self.changed.clear()
            await self.changed.wait()
        group: list[bytes] = []
        taken = 0
        while self.frames and (not group or taken + len(self.frames[0]) <= GROUP_BYTES):
            frame = self.frames.popleft()
            group.append(frame)
            taken += len(frame)
        self.size -= taken
        self.changed.set()
        return group


async def serve_connection(
    ingest: Ingest,
    executor: Executor,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """One sender: requests are applied and acknowledged in order."""
    backlog = _Backlog()
    # Groups handed to the writer thread, in order, waiting to be acknowledged.
    applying: asyncio.Queue[asyncio.Future[GroupOutcome] | None] = asyncio.Queue(maxsize=1)
    try:
        async with asyncio.TaskGroup() as group:
            feeder = group.create_task(_read_frames(reader, backlog))
            submitter = group.create_task(_submit_groups(ingest, executor, backlog, applying))
            await _acknowledge(applying, writer)
            feeder.cancel()
            submitter.cancel()
    except* FrameError as group_exc:
        log.warning("closing an IPC connection that sent a bad frame: %s", group_exc.exceptions[0])
    except* ConnectionError:
        pass  # the daemon went away; it replays whatever was not acknowledged
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _read_frames(reader: asyncio.StreamReader, backlog: _Backlog) -> None:
    splitter = FrameSplitter()
    while True:
        await backlog.wait_for_room()
        data = await reader.read(READ_BYTES)
        if not data:
            if splitter.inside_frame:
                raise FrameError("stream ended inside a frame")
            backlog.end()
            return
        backlog.add(splitter.feed(data))


async def _submit_groups(
    ingest: Ingest,
    executor: Executor,
    backlog: _Backlog,
    applying: asyncio.Queue[asyncio.Future[GroupOutcome] | None],
) -> None:
    loop = asyncio.get_running_loop()
    conn = Connection()
    while frames := await backlog.take():
        await applying.put(loop.run_in_executor(executor, ingest.apply_frames, conn, frames))
    await applying.put(None)


async def _acknowledge(
    applying: asyncio.Queue[asyncio.Future[GroupOutcome] | None], writer: asyncio.StreamWriter
) -> None:
    while (applied := await applying.get()) is not None:
        outcome = await applied
        _write_acks(writer, outcome)
        if outcome.failure is not None:
            # Stop here: the sender replays this and everything after it, in
            # order, once it reconnects.
            await writer.drain()
            return
        if outcome.bad_frame:
            await writer.drain()
            raise FrameError(outcome.bad_frame)
        if writer.transport.get_write_buffer_size() > DRAIN_ABOVE:
            await writer.drain()


def _write_acks(writer: asyncio.StreamWriter, outcome: GroupOutcome) -> None:
    """An Ack answers its request and every earlier one: one per group, plus
    one per rejected request (to carry its reason)."""
    last = 0
    for seq, why in outcome.rejected:
        writer.write(encode_frame(pb.Ack(seq=seq, ok=True, error=why)))
        last = seq
    if outcome.acked_seq > last:
        writer.write(encode_frame(pb.Ack(seq=outcome.acked_seq, ok=True)))
    if outcome.failure is not None:
        seq, why = outcome.failure
        writer.write(encode_frame(pb.Ack(seq=seq, ok=False, error=why)))
