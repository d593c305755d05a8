"""Real stores for the state contract suite: a redis-server (and the session's
moto_server, tests/conftest.py), started once per session on a free loopback
port, stopped at the end."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from local_servers import free_port, stop_process, wait_for_port


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]
    args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, "redis-server")
        yield port
    finally:
        stop_process(proc)


# moto_endpoint and aws_credentials come from tests/conftest.py.
