"""A clean stop's "detach" to a launcher of an older version, which does not
know it: the daemon goes on as if it did (the launcher keeps the jobs anyway)
and learns which it keeps from "list". A fake launcher speaks the protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from joblet.daemon.launcher_link import LauncherLink
from joblet.isolation import wire

RUNNING = {"job-b": 202, "job-a": 101}


class FakeLauncher:
    """Answers ping and list; `knows_detach` False answers detach as an
    older launcher does."""

    def __init__(self, knows_detach: bool) -> None:
        self.knows_detach = knows_detach
        self.ops: list[str] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = wire.PREFIX.unpack(await reader.readexactly(wire.PREFIX.size))
                request = wire.decode(await reader.readexactly(length))
                writer.write(wire.encode({"id": request["id"], **self.answer(request["op"])}))
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    def answer(self, op: str) -> dict[str, Any]:
        self.ops.append(op)
        if op == "ping":
            return {"ok": True, "pid": 4242}
        if op == "list":
            return {"ok": True, "jobs": RUNNING, "adopted": []}
        if op == "detach" and self.knows_detach:
            return {"ok": True, "jobs": ["job-a"]}
        return {"ok": False, "error": f"unknown op: {op!r}"}


@pytest.fixture
async def socket_dir(tmp_path: Path) -> AsyncIterator[Path]:
    (tmp_path / "launcher").mkdir()
    yield tmp_path


async def detach_from(socket_dir: Path, launcher: FakeLauncher) -> list[str]:
    path = socket_dir / "l.sock"
    server = await asyncio.start_unix_server(launcher.serve, path=str(path))
    link = LauncherLink(path, socket_dir / "launcher")
    try:
        await link.connect()
        return await link.detach()
    finally:
        await link.close()
        server.close()
        await server.wait_closed()


async def test_detach_returns_the_jobs_the_launcher_keeps(socket_dir: Path) -> None:
    launcher = FakeLauncher(knows_detach=True)
    assert await detach_from(socket_dir, launcher) == ["job-a"]
    assert launcher.ops[-1] == "detach"


async def test_an_older_launcher_refusing_detach_is_asked_what_it_runs(socket_dir: Path) -> None:
    launcher = FakeLauncher(knows_detach=False)
    assert await detach_from(socket_dir, launcher) == ["job-a", "job-b"]
    assert launcher.ops[-2:] == ["detach", "list"]
