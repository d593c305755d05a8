"""When a launcher exits on its own: asked to, once no job is left (a clean
daemon stop), or after `--idle-exit` seconds with no job and no client (its
daemon never came back). It never leaves a job, and it records every exit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from isolation_harness import Harness, sh

from joblet.isolation import records
from joblet.isolation.client import LauncherClient, ensure_launcher, wait_process_gone

pytestmark = pytest.mark.privileged


class Started:
    """A launcher of the test's own (our child), with the pid file a daemon writes."""

    def __init__(self, tmp_path: Path, client: LauncherClient, pid: int) -> None:
        self.tmp_path = tmp_path
        self.socket_path = str(tmp_path / "launcher.sock")
        self.state_dir = tmp_path / "state"
        self.harness = Harness(tmp_path, self.socket_path, client)
        client.on_exit(self.harness._on_exit)
        self.pid = pid

    @property
    def client(self) -> LauncherClient:
        return self.harness.client

    def running(self) -> bool:
        return not wait_process_gone(self.pid, 0)

    async def wait_gone(self, timeout: float = 10.0) -> None:
        assert await asyncio.to_thread(wait_process_gone, self.pid, timeout), "it still runs"


StartLauncher = Callable[[float], Awaitable[Started]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[StartLauncher]:
    if os.geteuid() != 0:
        pytest.skip("needs root: namespaces, mounts and pivot_root")
    made: list[Started] = []

    async def make(idle_exit_s: float) -> Started:
        socket_path = str(tmp_path / "launcher.sock")
        await ensure_launcher(socket_path, str(tmp_path / "state"), idle_exit_s=idle_exit_s)
        client = await LauncherClient.connect(socket_path)
        pid = await client.ping()
        (tmp_path / "state" / records.PID_FILE).write_text(f"{pid}\n")
        made.append(Started(tmp_path, client, pid))
        return made[-1]

    yield make
    for launcher in made:
        await launcher.client.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(launcher.pid, signal.SIGKILL)
        wait_process_gone(launcher.pid, 5)


def children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


async def test_asked_to_exit_with_no_job_it_goes_with_its_spares_socket_and_pid_file(
    start: StartLauncher,
) -> None:
    launcher = await start(0)
    await launcher.harness.run(["true"])  # leaves a spare init behind
    for _ in range(100):
        spares = children(launcher.pid)
        if spares:
            break
        await asyncio.sleep(0.02)
    assert spares, "no spare init was made"

    assert await launcher.client.exit() == []
    assert await launcher.client.wait_closed_by_launcher(10)
    await launcher.wait_gone()
    assert all(wait_process_gone(spare, 0) for spare in spares)
    assert not os.path.exists(launcher.socket_path)
    assert not (launcher.state_dir / records.PID_FILE).exists()


async def test_asked_to_exit_it_waits_for_the_running_job_and_records_its_exit(
    start: StartLauncher,
) -> None:
    launcher = await start(0)
    spec = launcher.harness.spec(sh("sleep 1; exit 4"))
    await launcher.harness.start(spec)
    assert await launcher.client.exit() == [spec.job_id]
    await asyncio.sleep(0.3)
    assert launcher.running()
    assert (await launcher.harness.wait(spec)).exit.exit_code == 4
    await launcher.wait_gone()
    exit_ = records.read_exit(spec.job_dir)
    assert exit_ is not None and exit_.exit_code == 4


async def test_a_new_client_cancels_an_asked_exit(start: StartLauncher) -> None:
    launcher = await start(0)
    spec = launcher.harness.spec(sh("sleep 0.5"))
    await launcher.harness.start(spec)
    await launcher.client.exit()
    async with await LauncherClient.connect(launcher.socket_path) as newcomer:
        await launcher.harness.wait(spec)
        await asyncio.sleep(0.3)
        assert launcher.running()
        assert await newcomer.ping() == launcher.pid


async def test_idle_exit_waits_while_a_client_is_connected(start: StartLauncher) -> None:
    launcher = await start(0.3)
    await asyncio.sleep(1.0)
    assert launcher.running()
    await launcher.client.close()  # its daemon went away
    began = time.monotonic()
    await launcher.wait_gone()
    assert time.monotonic() - began >= 0.2
    assert not os.path.exists(launcher.socket_path)


async def test_a_running_job_keeps_it_past_idle_exit_and_its_exit_is_recorded(
    start: StartLauncher,
) -> None:
    launcher = await start(0.3)
    spec = launcher.harness.spec(sh("while ! [ -e /work/go ]; do sleep 0.05; done; exit 6"))
    await launcher.harness.start(spec)
    await launcher.client.close()  # the daemon died
    await asyncio.sleep(1.0)
    assert launcher.running()
    Path(spec.workspace, "go").touch()
    await launcher.wait_gone()
    exit_ = records.read_exit(spec.job_dir)
    assert exit_ is not None and (exit_.exit_code, exit_.lost) == (6, False)


async def test_detach_keeps_the_jobs_voids_an_asked_exit_and_drops_the_spares(
    start: StartLauncher,
) -> None:
    """A clean daemon stop that leaves its jobs (live restore): the launcher
    answers which it keeps, lets its spares go and stays for the next daemon,
    even after its last job, when an exit was asked before."""
    launcher = await start(0)
    spec = launcher.harness.spec(sh("until [ -e /work/go ]; do sleep 0.05; done; exit 3"))
    job_pid = await launcher.harness.start(spec)
    await launcher.harness.run(["true"])  # leaves a spare init behind
    for _ in range(100):
        if children(launcher.pid) - {job_pid}:
            break
        await asyncio.sleep(0.02)
    assert children(launcher.pid) - {job_pid}, "no spare init was made"
    await launcher.client.exit()

    assert await launcher.client.detach() == [spec.job_id]
    for _ in range(100):  # spares live 5 s unless dropped
        if children(launcher.pid) == {job_pid}:
            break
        await asyncio.sleep(0.02)
    assert children(launcher.pid) == {job_pid}
    await launcher.client.close()  # the daemon has gone

    Path(spec.workspace, "go").touch()
    for _ in range(500):
        if records.read_exit(spec.job_dir) is not None:
            break
        await asyncio.sleep(0.02)
    exit_ = records.read_exit(spec.job_dir)
    assert exit_ is not None and exit_.exit_code == 3
    await asyncio.sleep(0.3)
    assert launcher.running()  # waits for the next daemon
    async with await LauncherClient.connect(launcher.socket_path) as next_daemon:
        assert await next_daemon.ping() == launcher.pid
