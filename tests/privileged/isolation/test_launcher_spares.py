"""Spare inits: cloned after a launch, used by the next one like it, gone with the launcher."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from isolation_harness import Harness, eventually, sh

from joblet.isolation.client import LauncherClient, ensure_launcher

pytestmark = pytest.mark.privileged


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


async def _spare(client: LauncherClient) -> int:
    """The launcher's one child that is no running job."""
    launcher_pid = await client.ping()
    deadline = time.monotonic() + 30
    while True:
        running = set((await client.running()).values())
        spares = _children(launcher_pid) - running
        if len(spares) == 1:
            return spares.pop()
        assert time.monotonic() < deadline, f"expected one spare init, found {spares}"
        await asyncio.sleep(0.02)


async def test_the_next_launch_runs_in_the_spare(launcher: Harness) -> None:
    await launcher.run(["true"])
    spare = await _spare(launcher.client)
    spec = launcher.spec(sh("echo $$; cat /etc/hostname; readlink /proc/1/exe; ls /"))
    assert await launcher.start(spec) == spare
    result = await launcher.wait(spec)
    lines = result.stdout.splitlines()
    assert lines[:2] == ["2", spec.hostname]  # tini is PID 1 of its own namespace
    assert lines[2] == "/memfd:tini (deleted)"  # the launcher's sealed copy, inherited
    assert "work" in lines and "proc" in lines and "volumes" not in lines


async def test_a_launch_unlike_the_last_gets_its_own_init(launcher: Harness) -> None:
    await launcher.run(["true"])
    spare = await _spare(launcher.client)
    spec = launcher.spec(["true"], allowed_mounts=("/usr", "/bin", "/lib", "/lib64"))
    assert await launcher.start(spec) != spare
    assert (await launcher.wait(spec)).exit.exit_code == 0


async def test_jobs_leave_nothing_but_their_files_in_the_job_dir(launcher: Harness) -> None:
    spec = launcher.spec(["true"])
    await launcher.start(spec)
    await launcher.wait(spec)
    assert sorted(os.listdir(spec.job_dir)) == ["exit.json", "output.log", "work"]


async def test_spares_do_not_outlive_the_launcher(tmp_path: Path) -> None:
    socket_path = str(tmp_path / "launcher.sock")
    await ensure_launcher(socket_path, str(tmp_path / "state"))
    client = await LauncherClient.connect(socket_path)
    harness = Harness(tmp_path, socket_path, client)
    client.on_exit(harness._on_exit)
    launcher_pid = await client.ping()
    try:
        await harness.run(["true"])
        spare = await _spare(client)
    finally:
        await client.close()
        os.kill(launcher_pid, signal.SIGTERM)
        os.waitpid(launcher_pid, 0)
    # Its control socket closed: it exits, reaped by an ancestor.
    gone = await eventually(lambda: not Path(f"/proc/{spare}").exists() or _state(spare) == "Z")
    assert gone, f"spare {spare} still runs"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"
