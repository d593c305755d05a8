"""Stopping a job: SIGTERM to the init through the launcher (which holds it
until tini can pass it on), to the job's other processes directly, and the
kill once the grace period, counted from the stop, is over. Real processes
stand in for the job's; the launcher and the cgroup are fakes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.errors import Unavailable
from joblet.isolation.spec import LaunchSpec
from joblet.jobs.ending import JobEnding
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.state_machine import Started
from joblet.jobs.table import JobRuntime, JobTable
from joblet.logs.follow import LogHub
from joblet.logs.service import JobLogs
from joblet.resources.interface import CgroupStats

GRACE_S = 0.3


class FakeCgroup:
    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self.job_id = "job"
        self.procs = procs
        self.killed_at = 0.0

    def procs_files(self) -> tuple[Path, ...]:
        return ()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def read_stats(self) -> CgroupStats:
        return CgroupStats()

    def oom_killed(self) -> bool:
        return False

    def kill_all(self) -> None:
        self.killed_at = time.monotonic()
        for proc in self.procs:
            proc.kill()

    def remove(self) -> None:
        pass

    def remove_if_empty(self) -> bool:
        return not self.pids()


class FakeLauncher:
    """Answers a signal request as the real one does once the init could
    take it; `hold` keeps it waiting (an init that never gets ready)."""

    def __init__(self, *, hold: bool = False, gone: bool = False) -> None:
        self.asked: list[tuple[str, int]] = []
        self.hold = hold
        self.gone = gone

    async def launch(self, spec: LaunchSpec) -> int:
        raise NotImplementedError

    async def signal(self, job_id: str, signum: int) -> bool:
        self.asked.append((job_id, signum))
        if self.gone:
            raise Unavailable("the launcher closed the connection")
        if self.hold:
            await asyncio.Event().wait()
        return True


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The job's init and one more process of the job."""
    started = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def _ending(
    launcher: FakeLauncher, procs: list[subprocess.Popen[bytes]]
) -> tuple[JobEnding, JobRuntime, FakeCgroup]:
    table = JobTable()
    table.registry.add(Job("job", JobSpec(command="sleep"), JobStatus.INITIALIZING))
    table.apply("job", Started(pid=procs[0].pid, at=1.0))
    cgroup = FakeCgroup(procs)
    rt = table.runtime["job"] = JobRuntime(cgroup=cgroup)
    logs = JobLogs(LogHub(), lambda job_id: Path("/nonexistent") / job_id)
    ending = JobEnding(table, logs, GRACE_S, lambda: None, launcher=launcher)
    return ending, rt, cgroup


async def _exit_when_signalled(rt: JobRuntime, proc: subprocess.Popen[bytes]) -> None:
    while proc.poll() is None:
        await asyncio.sleep(0.01)
    rt.exited.set()


async def test_the_init_is_signalled_through_the_launcher_the_rest_directly(
    procs: list[subprocess.Popen[bytes]],
) -> None:
    launcher = FakeLauncher()
    ending, rt, cgroup = _ending(launcher, procs)
    watcher = asyncio.ensure_future(_exit_when_signalled(rt, procs[1]))
    await ending.terminate("job")
    await watcher
    assert launcher.asked == [("job", signal.SIGTERM)]
    assert procs[1].wait(5) == -signal.SIGTERM
    assert procs[0].poll() is None  # the daemon itself never signalled the init
    assert cgroup.killed_at == 0.0


async def test_without_the_launcher_the_init_is_signalled_directly(
    procs: list[subprocess.Popen[bytes]],
) -> None:
    ending, rt, _ = _ending(FakeLauncher(gone=True), procs)
    watcher = asyncio.ensure_future(_exit_when_signalled(rt, procs[0]))
    await ending.terminate("job")
    await watcher
    assert procs[0].wait(5) == -signal.SIGTERM


async def test_a_signal_held_past_the_grace_period_ends_in_the_kill(
    procs: list[subprocess.Popen[bytes]],
) -> None:
    ending, rt, cgroup = _ending(FakeLauncher(hold=True), procs)
    watcher = asyncio.ensure_future(_exit_when_signalled(rt, procs[0]))
    started = time.monotonic()
    await ending.terminate("job")
    await watcher
    assert GRACE_S <= cgroup.killed_at - started < GRACE_S + 2
    assert procs[0].wait(5) == -signal.SIGKILL
