"""Following a log without inotify: a job (uid 0, like the daemon) can take
every inotify instance or watch of root. The hub then polls, and live
followers still get everything, in order, and end with the job."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from pathlib import Path

import pytest

from joblet.isolation.libc import Inotify
from joblet.logs.follow import LogHub
from joblet.logs.format import Stream, encode_record

JOB = "job-1"


def _no_instances() -> Inotify:
    raise OSError(errno.EMFILE, "inotify_init1: Too many open files")


class _NoWatches(Inotify):
    """A real instance whose watches are refused, as when the uid's
    fs.inotify.max_user_watches are all in use."""

    def add_watch(self, path: str, mask: int) -> int:
        raise OSError(errno.ENOSPC, "inotify_add_watch: No space left on device", path)


def _append(path: Path, ts: int, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(encode_record(Stream.STDOUT, ts, data))


async def _follow(hub: LogHub, seen: bytearray) -> None:
    async for records in hub.follow_records(JOB):
        seen += b"".join(bytes(r.data) for r in records)


async def _until(seen: bytearray, expected: bytes) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while bytes(seen) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"follower has {bytes(seen)!r}"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("inotify", [_no_instances, _NoWatches], ids=["instances", "watches"])
async def test_live_output_is_followed_by_polling(
    tmp_path: Path, inotify: Callable[[], Inotify]
) -> None:
    path = tmp_path / "output.log"
    hub = LogHub(inotify)
    hub.start()  # no exception: the daemon starts without inotify
    try:
        hub.track(JOB, path)
        assert hub.polling
        seen = bytearray()
        follower = asyncio.create_task(_follow(hub, seen))
        expected = b""
        for i in range(5):
            line = f"line {i}\n".encode()
            _append(path, i, line)
            expected += line
            await _until(seen, expected)  # live, before the job ends
        hub.finish(JOB)
        await asyncio.wait_for(follower, 5)
        assert bytes(seen) == expected
    finally:
        hub.close()
    assert not hub.polling


async def test_polling_stops_once_no_log_needs_it(tmp_path: Path) -> None:
    hub = LogHub(_no_instances)
    hub.start()
    try:
        hub.track(JOB, tmp_path / "output.log")
        hub.finish(JOB)
        deadline = asyncio.get_running_loop().time() + 5
        while hub.polling:
            assert asyncio.get_running_loop().time() < deadline, "still polling"
            await asyncio.sleep(0.05)
    finally:
        hub.close()
