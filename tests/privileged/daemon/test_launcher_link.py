"""The daemon's launcher link against a real launcher: a connection the
launcher drops (a protocol error) is replaced by one to the same launcher,
whose jobs go on and report their real exit; a launcher that dies is replaced
by a new one, and launches go on."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from joblet.config.model import DEFAULT_ALLOWED_MOUNTS
from joblet.daemon.launcher_link import LauncherLink
from joblet.isolation.spec import JobExit, LaunchSpec

pytestmark = pytest.mark.privileged

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/work"}


class Seen:
    def __init__(self) -> None:
        self.exits: dict[str, JobExit] = {}
        self.backs: list[tuple[dict[str, int], set[str]]] = []

    def exited(self, event: JobExit) -> None:
        self.exits[event.job_id] = event

    def back(self, running: dict[str, int], adopted: object) -> None:
        self.backs.append((running, set(adopted)))  # type: ignore[call-overload]


@pytest.fixture
async def link(tmp_path: Path) -> AsyncIterator[tuple[LauncherLink, Seen]]:
    if os.geteuid() != 0:
        pytest.skip("needs root: namespaces, mounts and pivot_root")
    link = LauncherLink(tmp_path / "launcher.sock", tmp_path / "launcher")
    seen = Seen()
    link.on_exit(seen.exited)
    link.on_back(seen.back)
    await link.connect()
    link.keep_up()
    try:
        yield link, seen
    finally:
        pid = link.pid
        await link.close()
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)  # the link started it: a child of this process


def spec(base: Path, script: str) -> LaunchSpec:
    job_id = str(uuid.uuid4())
    job_dir = base / "jobs" / job_id
    (job_dir / "work").mkdir(parents=True)
    return LaunchSpec(
        job_id=job_id, argv=("sh", "-c", script), env=dict(ENV), hostname="job",
        job_dir=str(job_dir), workspace=str(job_dir / "work"),
        log_path=str(job_dir / "output.log"), cgroup_procs=(),
        allowed_mounts=DEFAULT_ALLOWED_MOUNTS,
    )  # fmt: skip


async def until(done: object, what: str, timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not done():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_dropped_connection_is_replaced_and_jobs_go_on(
    link: tuple[LauncherLink, Seen], tmp_path: Path
) -> None:
    launcher, seen = link
    pid = launcher.pid
    job = spec(tmp_path, "sleep 1; exit 7")
    await launcher.launch(job)
    # Something the launcher cannot parse: it drops the connection (the
    # daemon's own requests are always whole frames; this stands for a
    # damaged one).
    client = launcher._client
    assert client is not None
    client._writer.write(b"\x00\x00\x00\x02[]")

    await until(lambda: seen.backs, "the link to connect again")
    running, adopted = seen.backs[0]
    assert launcher.pid == pid  # the same launcher: nothing was restarted
    assert job.job_id in running and not adopted
    await until(lambda: job.job_id in seen.exits, "the job's exit")
    assert seen.exits[job.job_id].exit_code == 7 and not seen.exits[job.job_id].lost
    after = spec(tmp_path, "exit 0")
    await launcher.launch(after)
    await until(lambda: after.job_id in seen.exits, "a later job's exit")


async def test_a_killed_launcher_is_replaced_and_launches_wait_for_it(
    link: tuple[LauncherLink, Seen], tmp_path: Path
) -> None:
    launcher, seen = link
    old = launcher.pid
    long_job = spec(tmp_path, "sleep 30")
    job_pid = await launcher.launch(long_job)
    record = tmp_path / "launcher" / f"{long_job.job_id}.json"  # written just after the answer
    await until(record.exists, "the launcher's record of the job")
    client = launcher._client
    assert client is not None
    os.kill(old, signal.SIGKILL)
    await until(lambda: client.is_closed, "the connection to break")
    job = spec(tmp_path, "exit 4")
    await launcher.launch(job)  # waits for the new launcher, never fails
    await until(lambda: job.job_id in seen.exits, "the new job's exit")
    assert seen.exits[job.job_id].exit_code == 4
    assert launcher.pid != old
    _, adopted = seen.backs[0]
    assert adopted == {long_job.job_id}  # alive, but its relay died with the old launcher
    os.kill(job_pid, signal.SIGKILL)
    # The old launcher is reaped (it was the link's child): no zombie stays.
    with pytest.raises(ChildProcessError):
        os.waitpid(old, os.WNOHANG)


async def test_jobs_are_settled_when_no_launcher_can_be_started(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: namespaces, mounts and pivot_root")
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    launcher = LauncherLink(sockets / "l.sock", tmp_path / "launcher", settle_after_s=0.5)
    seen = Seen()
    launcher.on_back(seen.back)
    await launcher.connect()
    launcher.keep_up()
    job = spec(tmp_path, "sleep 30")
    job_pid = await launcher.launch(job)
    await until((tmp_path / "launcher" / f"{job.job_id}.json").exists, "the job's record")
    try:
        shutil.rmtree(sockets)  # no new launcher can listen there
        os.kill(launcher.pid, signal.SIGKILL)
        await until(lambda: seen.backs, "the jobs to be settled without a launcher")
        assert seen.backs[0] == ({}, set())  # the manager settles every job it ran
        sockets.mkdir()
        await until(lambda: len(seen.backs) > 1, "a launcher at last")
        assert seen.backs[1][1] == {job.job_id}  # the new one lists it as orphaned
    finally:
        os.kill(job_pid, signal.SIGKILL)
        pid = launcher.pid
        await launcher.close()
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


async def test_a_link_knows_whether_its_launcher_saw_every_earlier_launch(tmp_path: Path) -> None:
    """A launcher started here is new: a job an earlier daemon was starting may
    have run unseen. The same launcher found again (pid file naming it) saw
    every launch; one whose pid file names another pid did not."""
    if os.geteuid() != 0:
        pytest.skip("needs root: namespaces, mounts and pivot_root")
    socket_path, state_dir = tmp_path / "launcher.sock", tmp_path / "launcher"
    first = LauncherLink(socket_path, state_dir)
    await first.connect()
    pid = first.pid
    try:
        assert not first.launches_known  # it started this launcher
        await first.close()
        again = LauncherLink(socket_path, state_dir)
        await again.connect()
        assert again.pid == pid and again.launches_known
        await again.close()
        (state_dir / "launcher.pid").write_text(f"{pid + 1}\n")
        other = LauncherLink(socket_path, state_dir)
        await other.connect()
        assert other.pid == pid and not other.launches_known
        await other.close()
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
