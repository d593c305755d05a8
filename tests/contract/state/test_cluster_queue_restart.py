"""The placement queue across a restart of its redis-server: connections
the pool held while Redis was away are not a RunJob's failure."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_servers import free_port, stop_process, wait_for_port

from joblet.cluster import placement as p
from joblet.cluster.queue import PlacementQueue
from joblet.state.config import RedisConfig


class RedisServer:
    def __init__(self, binary: str, directory: Path) -> None:
        self.port = free_port()
        self._args = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                      "--dir", str(directory), "--save", "", "--appendonly", "yes",
                      "--appendfsync", "always", "--daemonize", "no"]  # fmt: skip
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, proc, "redis-server")
        return proc

    def restart(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc = self._start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    running = RedisServer(binary, tmp_path)
    try:
        yield running
    finally:
        stop_process(running.proc)


async def test_a_submit_after_redis_restarted_is_queued_once(server: RedisServer) -> None:
    queue = PlacementQueue.open(RedisConfig(port=server.port), "q:", "node-a")
    try:
        place = p.parse_place("")
        await queue.submit("job-before", b"request", place, retry=False)
        server.restart()  # the pool's connection is now closed by the server
        await queue.submit("job-after", b"request", place, retry=False)
        entries = await queue._client.xrange(queue.stream_key(place.stream))
        assert sorted(fields[b"id"] for _, fields in entries) == [b"job-after", b"job-before"]
    finally:
        await queue.close()
