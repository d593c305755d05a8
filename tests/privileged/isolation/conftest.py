"""A real launcher in a temporary directory for each test."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from isolation_harness import Harness

from joblet.isolation.client import LauncherClient, ensure_launcher


@pytest.fixture
async def launcher(tmp_path: Path) -> AsyncIterator[Harness]:
    if os.geteuid() != 0:
        pytest.skip("needs root: namespaces, mounts and pivot_root")
    socket_path = str(tmp_path / "launcher.sock")
    await ensure_launcher(socket_path, str(tmp_path / "state"))
    client = await LauncherClient.connect(socket_path)
    harness = Harness(tmp_path, socket_path, client)
    client.on_exit(harness._on_exit)
    try:
        yield harness
    finally:
        launcher_pid = await harness.client.ping()  # a test may have replaced it
        await harness.client.close()
        os.kill(launcher_pid, signal.SIGTERM)
        os.waitpid(launcher_pid, 0)
