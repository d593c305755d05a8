"""The daemon's launcher client against a fake launcher on a Unix socket:
frames both ways, and a connection the client ends on nonsense."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from joblet.errors import Unavailable
from joblet.isolation import wire
from joblet.isolation.client import LauncherClient


@contextlib.asynccontextmanager
async def fake_launcher(path: Path, reply: bytes) -> AsyncIterator[None]:
    """Answers one request with `reply` (raw bytes), then waits for the
    client to hang up: only the client can end the connection."""
    hung_up = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (length,) = wire.PREFIX.unpack(await reader.readexactly(wire.PREFIX.size))
            wire.decode(await reader.readexactly(length))
            writer.write(reply)
            await writer.drain()
            await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            hung_up.set()

    async with await asyncio.start_unix_server(handle, str(path)):
        yield
        await asyncio.wait_for(hung_up.wait(), 5)


async def test_a_framed_answer_is_matched_to_its_request(tmp_path: Path) -> None:
    sock = tmp_path / "l.sock"
    answer = wire.encode({"id": 1, "ok": True, "pid": 42})
    async with fake_launcher(sock, answer), await LauncherClient.connect(str(sock)) as client:
        assert await client.ping() == 42
        assert not client.is_closed


@pytest.mark.parametrize(
    "reply",
    [wire.PREFIX.pack(2) + b"[]", wire.PREFIX.pack(wire.MAX_FRAME + 1), wire.PREFIX.pack(1) + b"{"],
    ids=["not an object", "oversized", "not json"],
)
async def test_nonsense_from_the_launcher_ends_the_connection(tmp_path: Path, reply: bytes) -> None:
    sock = tmp_path / "l.sock"
    async with fake_launcher(sock, reply), await LauncherClient.connect(str(sock)) as client:
        with pytest.raises(Unavailable):
            await asyncio.wait_for(client.ping(), 5)
        await asyncio.wait_for(client.wait_closed(), 5)
        assert client.is_closed
