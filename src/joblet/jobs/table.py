"""What the job manager's parts share: the registry of job records, what the
daemon holds for each live job, and the background tasks the manager owns."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from joblet.isolation.spec import JobExit
from joblet.jobs.model import Job
from joblet.jobs.ports import JobListener
from joblet.jobs.registry import JobRegistry
from joblet.jobs.state_machine import Event
from joblet.resources.interface import JobCgroup, Limits
from joblet.runtimes.seams import BuildPlan, RuntimeMount


@dataclass
class JobRuntime:
    """What the manager holds for a job while it is alive (not part of the record)."""

    cgroup: JobCgroup | None = None
    limits: Limits | None = None
    early_exit: JobExit | None = None  # an exit that arrived before Started
    log_ready: asyncio.Event = field(default_factory=asyncio.Event)  # started or ended
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    stopped_by: str = ""
    timed_out: bool = False
    launcher_lost: bool = False  # its launcher died; being settled as lost
    lost_reason: str = ""  # killed because the cluster holds it lost: its end's reason
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    # Killing and removing the cgroup run in threads; they must not overlap
    # (a removal under a running kill makes the kill fail with ENODEV).
    cgroup_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    cleanup: asyncio.Task[None] | None = None  # its cgroup's removal, once it ended
    # The write side of the job's stdin FIFO (RunJobRequest.stdin); -1 = none.
    stdin_fd: int = -1

    def close_stdin(self) -> None:
        """EOF for the job's fd 0 (the daemon holds the only write side)."""
        if self.stdin_fd >= 0:
            fd, self.stdin_fd = self.stdin_fd, -1
            os.close(fd)

    runtime_mount: RuntimeMount | None = None  # the runtime pinned for it
    build: BuildPlan | None = None  # it is a runtime build
    timeout_s: float = 0.0  # its own timeout over joblet.jobTimeout (builds)
    # A requeued job's last run being cleared away (its old cgroup): the
    # next run waits for it.
    settling: asyncio.Task[None] | None = None

    def call_later(self, delay: float, callback: Callable[..., object], *args: object) -> None:
        """Arm a timer for this job; it is cancelled when the job ends or is deleted."""
        loop = asyncio.get_running_loop()
        self.timers.append(loop.call_later(delay, callback, *args))

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


class JobTable:
    """The job records with their runtimes, and the tasks spawned for them."""

    def __init__(self, listener: JobListener | None = None, aging_s: float = 60.0) -> None:
        self.registry = JobRegistry(aging_s)
        self.runtime: dict[str, JobRuntime] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.listener = listener

    def apply(self, job_id: str, event: Event) -> Job:
        """Move a job through the state machine and tell the listener."""
        job = self.registry.apply(job_id, event)
        self.changed(job)
        return job

    def changed(self, job: Job) -> None:
        if self.listener is not None:
            self.listener.changed(job)

    def push(self) -> None:
        """Send the changes so far to the store now (see JobListener.push)."""
        if self.listener is not None:
            self.listener.push()

    async def recorded(self, timeout: float) -> bool:
        """Whether every change so far reached the store within `timeout`."""
        return self.listener is None or await self.listener.recorded(timeout)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine as a task the manager owns (awaited or cancelled at shutdown)."""
        self.spawn_task(coro)

    def spawn_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
