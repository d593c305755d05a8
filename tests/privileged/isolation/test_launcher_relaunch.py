"""A job launched again while a run of it, left by a launcher that died, is
still alive: the earlier run is killed first (the daemon decided it is over),
so the two never run together, and the new run is not ended by the old one."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from isolation_harness import UNTIL_RELEASED, Harness, eventually, release, sh

from joblet.isolation.client import LauncherClient, ensure_launcher, wait_process_gone

pytestmark = pytest.mark.privileged


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] not in ("Z", "X")
    except (OSError, IndexError):
        return False


async def test_a_relaunch_ends_the_run_a_dead_launcher_left(launcher: Harness) -> None:
    spec = launcher.spec(sh(UNTIL_RELEASED))
    old_pid = await launcher.start(spec)
    dead = await launcher.client.ping()
    await launcher.client.close()
    os.kill(dead, signal.SIGKILL)  # the job lives on: the next launcher adopts it
    os.waitpid(dead, 0)
    assert _alive(old_pid)
    await ensure_launcher(launcher.socket, str(launcher.base / "state"))
    launcher.client = await LauncherClient.connect(launcher.socket)
    launcher.client.on_exit(launcher._on_exit)
    new_pid = await launcher.start(spec)  # the same job, launched again
    assert new_pid != old_pid
    assert await eventually(lambda: not _alive(old_pid), timeout=5)
    assert _alive(new_pid)
    release(spec)
    result = await launcher.wait(spec)
    assert result.exit.exit_code == 0 and not result.exit.lost
    assert wait_process_gone(new_pid, 5)
