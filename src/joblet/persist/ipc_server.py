"""The IPC side of persist: length-delimited `Request` frames in, `Ack` frames out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import Executor
from pathlib import Path

from joblet.api import persist_pb2 as pb
from joblet.ipc.framing import FrameError, encode_frame, read_frame
from joblet.persist.ingest import Ingest, StorageError

log = logging.getLogger(__name__)

DRAIN_ABOVE = 1 << 20
PIPELINE = 8  # frames read ahead while one is being compressed


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
        await serve_connection(ingest, executor, reader, writer)

    server = await asyncio.start_unix_server(handle, path=str(path), limit=1 << 20)
    os.chmod(path, 0o600)
    return server


async def serve_connection(
    ingest: Ingest,
    executor: Executor,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """One sender: requests are applied and acknowledged in order."""
    queue: asyncio.Queue[pb.Request | None] = asyncio.Queue(maxsize=PIPELINE)
    try:
        async with asyncio.TaskGroup() as group:
            feeder = group.create_task(_feed(reader, queue))
            await _apply_all(ingest, executor, queue, writer)
            feeder.cancel()
    except* FrameError as group_exc:
        log.warning("closing an IPC connection that sent a bad frame: %s", group_exc.exceptions[0])
    except* ConnectionError:
        pass  # the daemon went away; it replays whatever was not acknowledged
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _feed(reader: asyncio.StreamReader, queue: asyncio.Queue[pb.Request | None]) -> None:
    while (request := await read_frame(reader, pb.Request)) is not None:
        await queue.put(request)
    await queue.put(None)


async def _apply_all(
    ingest: Ingest,
    executor: Executor,
    queue: asyncio.Queue[pb.Request | None],
    writer: asyncio.StreamWriter,
) -> None:
    loop = asyncio.get_running_loop()
    session = ""
    while (request := await queue.get()) is not None:
        if request.WhichOneof("body") == "hello":
            session = request.hello.session
            continue
        try:
            rejected = await loop.run_in_executor(executor, ingest.apply, session, request)
        except StorageError as exc:
            # Stop here: the sender replays this and everything after it, in
            # order, once it reconnects.
            writer.write(encode_frame(pb.Ack(seq=request.seq, ok=False, error=str(exc))))
            await writer.drain()
            return
        writer.write(encode_frame(pb.Ack(seq=request.seq, ok=True, error=rejected)))
        if writer.transport.get_write_buffer_size() > DRAIN_ABOVE:
            await writer.drain()
