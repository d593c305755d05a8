"""The daemon's lasting tie to its launcher: one connection at a time, and a
new one (to a new launcher if it died) as soon as a connection breaks.

A connection breaks when the launcher dies (kill -9, a crash), closes it, or
either side meets something it cannot parse. The link then starts a launcher
if none answers, connects, asks what it runs and hands that to `on_back`
callbacks (the job manager settles what the old connection left), and only
then lets launches through again. Launches asked for in between wait for the
new connection instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path

from joblet.errors import IsolationError, JobletError, Unavailable
from joblet.isolation import records
from joblet.isolation.client import (
    IDLE_EXIT_S,
    START_TIMEOUT_S,
    LauncherClient,
    ensure_launcher,
    wait_process_gone,
)
from joblet.isolation.spec import JobExit, LaunchSpec

log = logging.getLogger(__name__)

ExitCallback = Callable[[JobExit], None]
BackCallback = Callable[[dict[str, int], AbstractSet[str]], None]
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0


class LauncherLink:
    """Implements the manager's `Launcher` port over whichever launcher runs."""

    def __init__(
        self,
        socket_path: Path,
        state_dir: Path,
        *,
        settle_after_s: float = START_TIMEOUT_S,
        idle_exit_s: float = IDLE_EXIT_S,
        user_namespace: str = "off",
    ) -> None:
        self._socket = str(socket_path)
        self._idle_exit_s = idle_exit_s
        self._user_namespace = user_namespace
        self._settle_after_s = settle_after_s
        self._state_dir = state_dir
        self._client: LauncherClient | None = None
        self._ready = asyncio.Event()
        self._on_exit: list[ExitCallback] = []
        self._on_back: list[BackCallback] = []
        self._children: set[int] = set()  # launchers this daemon started: reaped here
        self._task: asyncio.Task[None] | None = None
        self.pid = 0  # the launcher's, once connected
        # Whether the launcher found at the first connection is the one the
        # previous daemon launched through (see recovery.decide).
        self.launches_known = False

    async def connect(self) -> None:
        """The first connection (starting a launcher if none answers)."""
        await self._connect()

    def keep_up(self) -> None:
        """From now on, replace a broken connection (once the callbacks are in)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._keep_up(), name="launcher")

    def on_exit(self, callback: ExitCallback) -> None:
        self._on_exit.append(callback)

    def on_back(self, callback: BackCallback) -> None:
        self._on_back.append(callback)

    async def launch(self, spec: LaunchSpec) -> int:
        return await (await self._connected()).launch(spec)

    async def running(self) -> dict[str, int]:
        return await (await self._connected()).running()

    async def fence(self, until: float, job_ids: list[str]) -> None:
        await (await self._connected()).fence(until, job_ids)

    async def signal(self, job_id: str, signum: int) -> bool:
        return await (await self._connected()).signal(job_id, signum)

    async def running_detail(self) -> tuple[dict[str, int], set[str]]:
        return await (await self._connected()).running_detail()

    async def exit(self) -> list[str]:
        """Ask the launcher to exit once no job is left (a job still running
        keeps it); from now on a broken connection is not replaced. Returns
        the jobs running now."""
        client = await self._connected()
        await self._stop_keeping_up()
        return await client.exit()

    async def detach(self) -> list[str]:
        """Leave the running jobs to the launcher (a clean stop that keeps
        them); from now on a broken connection is not replaced. Returns the
        jobs it keeps."""
        client = await self._connected()
        await self._stop_keeping_up()
        try:
            return await client.detach()
        except IsolationError:  # a launcher of an older version: it keeps them anyway
            return sorted(await client.running())

    async def wait_exited(self, timeout: float) -> bool:
        """After `exit`: whether the launcher closed the connection and its
        process ended within `timeout` each."""
        client = self._client
        if client is None or not await client.wait_closed_by_launcher(timeout):
            return False
        return await asyncio.to_thread(wait_process_gone, self.pid, timeout)

    async def close(self) -> None:
        await self._stop_keeping_up()
        if self._client is not None:
            await self._client.close()
        self._reap()

    async def _stop_keeping_up(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ---- the connection ------------------------------------------------

    async def _connected(self) -> LauncherClient:
        client = self._client
        if client is not None and not client.is_closed and self._ready.is_set():
            return client
        self._ready.clear()
        try:
            await asyncio.wait_for(self._ready.wait(), START_TIMEOUT_S)
        except TimeoutError:
            raise Unavailable("no launcher answers; the daemon keeps trying to start one") from None
        assert self._client is not None
        return self._client

    async def _connect(self, *, back: bool = False) -> None:
        """Start a launcher if none answers and connect to it; `back`: after a
        broken connection, hand what it runs to the `on_back` callbacks."""
        spawned = await ensure_launcher(
            self._socket, str(self._state_dir), idle_exit_s=self._idle_exit_s,
            user_namespace=self._user_namespace,
        )  # fmt: skip
        if spawned is not None:
            self._children.add(spawned)
        client = await LauncherClient.connect(self._socket)
        try:
            client.on_exit(self._exited)
            self.pid = await client.ping()
            if self._user_namespace != "off" and not back:
                note = await client.user_namespace()
                report = log.info if note.startswith("on") else log.warning
                report("user namespaces (joblet.userNamespace: %s): %s", self._user_namespace, note)
            if not back:
                # The file names the launcher the last daemon used; one that
                # died or exited took it along or left another pid in it.
                self.launches_known = spawned is None and self._named_pid() == self.pid
            # The launcher outlives the daemon on purpose; its pid lets an
            # operator (or a test) find it.
            (self._state_dir / records.PID_FILE).write_text(f"{self.pid}\n")
            running, adopted = await client.running_detail() if back else ({}, set())
        except BaseException:
            await client.close()
            raise
        self._client = client
        if back:
            log.warning("launcher (pid %d) connected; it runs %d job(s)", self.pid, len(running))
            for callback in self._on_back:
                callback(running, adopted)
        self._ready.set()

    def _named_pid(self) -> int:
        try:
            return int((self._state_dir / records.PID_FILE).read_text().strip())
        except (OSError, ValueError):
            return 0

    def _exited(self, event: JobExit) -> None:
        for callback in self._on_exit:
            callback(event)

    async def _keep_up(self) -> None:
        while True:
            client = self._client
            if client is not None:
                await client.wait_closed()
                await client.close()
            self._ready.clear()
            log.warning("the connection to the launcher (pid %d) broke; reconnecting", self.pid)
            # Exit reports read just before the break are queued with call_soon:
            # they apply before the jobs are settled.
            await asyncio.sleep(0)
            self._reap()
            await self._reconnect()
            self._reap()  # the old launcher is surely gone by now, if it died

    async def _reconnect(self) -> None:
        """Until a launcher answers and the manager has settled the jobs. If
        none answers for `settle_after_s`, the jobs are settled as if a
        launcher had answered that it runs none: nothing supervises them."""
        delay = RETRY_FIRST_S
        settle_at = asyncio.get_running_loop().time() + self._settle_after_s
        while True:
            try:
                await self._connect(back=True)
                return
            except (JobletError, OSError) as exc:
                log.error("no launcher yet (%s); retrying in %.2fs", exc, delay)
            if settle_at and asyncio.get_running_loop().time() >= settle_at:
                settle_at = 0.0
                log.error("no launcher for %.0fs: settling the jobs it ran", self._settle_after_s)
                for callback in self._on_back:
                    callback({}, set())
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _reap(self) -> None:
        """Collect launchers this daemon started that have ended (no zombies)."""
        for pid in list(self._children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self._children.discard(pid)
