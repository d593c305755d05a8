"""Start a helper process (persist, state) and restart it when it dies.

The helper runs `joblet <name> --config FILE --exit-with-parent`: it asks the
kernel to send it SIGTERM when the daemon dies (PR_SET_PDEATHSIG), so a crashed
daemon never leaves helpers holding the sockets its successor needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 10.0
STABLE_AFTER_S = 30.0  # a helper that ran this long resets the backoff
STOP_GRACE_S = 5.0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _previous_helper_pid(pid_path: Path, name: str) -> int | None:
    """The pid in `pid_path` if it is still a `joblet <name>` helper process."""
    try:
        pid = int(pid_path.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if is_helper_cmdline(cmdline, name) and _alive(pid) else None


def is_helper_cmdline(cmdline: list[bytes], name: str) -> bool:
    """Whether argv runs `joblet <name>`; `joblet ui` execs its serving
    process (joblet.ui.runtime) under the same pid."""
    wanted = [b"joblet.daemon.main", name.encode()]
    if any(cmdline[i : i + 2] == wanted for i in range(len(cmdline))):
        return True
    return name == "ui" and b"joblet.ui.runtime" in cmdline


def backoff_delays(start: float = BACKOFF_START_S, cap: float = BACKOFF_MAX_S) -> list[float]:
    """The delays between restarts: doubling from `start` up to `cap`."""
    delays = [start]
    while delays[-1] < cap:
        delays.append(min(cap, delays[-1] * 2))
    return delays


class HelperSupervisor:
    """Owns one helper process; `async with` starts it, leaving stops it."""

    def __init__(self, name: str, config_path: Path, log_path: Path) -> None:
        self.name = name
        self._pid_path = log_path.with_suffix(".pid")
        self._argv: Sequence[str] = (
            sys.executable,
            "-m",
            "joblet.daemon.main",
            name,
            "--config",
            str(config_path),
            "--exit-with-parent",
        )
        self._log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._no_delay = asyncio.Event()
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def __aenter__(self) -> HelperSupervisor:
        await self._end_previous()
        await self._spawn()
        self._task = asyncio.create_task(self._watch(), name=f"supervise-{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._terminate()

    def restart_now(self) -> None:
        """From now on a helper that exits is started again at once, not after
        its backoff: at a clean stop the daemon's last records and log lines
        must reach a helper that a crash left waiting out its delay."""
        self._no_delay.set()

    async def _spawn(self) -> None:
        with self._log_path.open("ab") as out:
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                close_fds=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._pid_path.write_text(f"{self._proc.pid}\n")
        log.info("started %s helper (pid %d)", self.name, self._proc.pid)

    async def _end_previous(self) -> None:
        """A helper of a daemon that crashed gets SIGTERM from the kernel but may
        still be closing; two helpers on one socket would unlink each other's."""
        pid = _previous_helper_pid(self._pid_path, self.name)
        if pid is None:
            return
        log.info("waiting for the previous %s helper (pid %d) to exit", self.name, pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_GRACE_S
        while _alive(pid) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    async def _watch(self) -> None:
        delays = backoff_delays()
        failures = 0
        while not self._stopping:
            assert self._proc is not None
            started = asyncio.get_running_loop().time()
            code = await self._proc.wait()
            if self._stopping:
                return
            ran = asyncio.get_running_loop().time() - started
            failures = 0 if ran >= STABLE_AFTER_S else failures + 1
            delay = delays[min(failures, len(delays) - 1)]
            log.warning(
                "%s helper exited with %s after %.1fs; restarting in %.1fs",
                self.name,
                code,
                ran,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._no_delay.wait(), delay)
            if self._stopping:
                return
            self.restarts += 1
            await self._spawn()

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
