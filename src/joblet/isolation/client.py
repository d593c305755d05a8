"""The daemon's side of the launcher: an asyncio client and a starter."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from joblet.errors import InvalidArgument, IsolationError, Unavailable
from joblet.isolation import wire
from joblet.isolation.records import read_start_ticks
from joblet.isolation.spec import JobExit, LaunchSpec

ExitCallback = Callable[[JobExit], None]
START_TIMEOUT_S = 10.0
START_POLL_S = 0.01
IDLE_EXIT_S = 60.0  # the launcher's own default (kept apart: it imports much more)

log = logging.getLogger(__name__)


class LauncherClient:
    """One connection to the launcher. Requests may overlap; answers are
    matched by id. Exit events go to every `on_exit` callback."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._callbacks: list[ExitCallback] = []
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def connect(cls, socket_path: str) -> LauncherClient:
        try:
            reader, writer = await asyncio.open_unix_connection(socket_path)
        except OSError as exc:
            raise Unavailable(f"launcher socket {socket_path}: {exc.strerror or exc}") from exc
        return cls(reader, writer)

    async def __aenter__(self) -> LauncherClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def on_exit(self, callback: ExitCallback) -> None:
        self._callbacks.append(callback)

    @property
    def is_closed(self) -> bool:
        """The connection ended (the launcher died, closed it, or spoke nonsense)."""
        return self._task.done()

    async def wait_closed(self) -> None:
        """Until the connection ends, for whatever reason."""
        await asyncio.wait([self._task])

    async def ping(self) -> int:
        """The launcher's pid."""
        return int((await self._request({"op": "ping"}))["pid"])

    async def user_namespace(self) -> str:
        """Whether the launcher's jobs run in a user namespace ("off", "on: ...",
        or why it is unavailable)."""
        return str((await self._request({"op": "ping"})).get("user_namespace", "off"))

    async def launch(self, spec: LaunchSpec) -> int:
        """Start a job; returns the host pid of its init once the command exec'd."""
        answer = await self._request({"op": "launch", "spec": spec.to_dict()})
        return int(answer["pid"])

    async def running(self) -> dict[str, int]:
        return (await self.running_detail())[0]

    async def running_detail(self) -> tuple[dict[str, int], set[str]]:
        """Running jobs {id: pid}, and which of them a previous launcher started
        (their output pipes died with it)."""
        answer = await self._request({"op": "list"})
        jobs = {str(k): int(v) for k, v in answer["jobs"].items()}
        return jobs, {str(j) for j in answer.get("adopted", ())}

    async def signal(self, job_id: str, signum: int) -> bool:
        """Signal the job's init, once it can take the signal: False when it
        ended before it could (its exit is reported as usual)."""
        answer = await self._request({"op": "signal", "job_id": job_id, "signal": signum})
        return bool(answer.get("delivered", True))

    async def fence(self, until: float, job_ids: list[str]) -> None:
        """Have the launcher kill `job_ids` at `until` (CLOCK_MONOTONIC
        seconds) unless told again first (see Launcher.set_fence)."""
        await self._request({"op": "fence", "until": until, "jobs": job_ids})

    async def exit(self) -> list[str]:
        """Ask the launcher to exit as soon as no job is left (a new client
        cancels that); returns the jobs still running now."""
        answer = await self._request({"op": "exit"})
        return [str(job_id) for job_id in answer.get("jobs", ())]

    async def detach(self) -> list[str]:
        """Tell the launcher the daemon goes away and leaves it the running
        jobs (it keeps them and waits for the next daemon); returns them."""
        answer = await self._request({"op": "detach"})
        return [str(job_id) for job_id in answer.get("jobs", ())]

    async def wait_closed_by_launcher(self, timeout: float) -> bool:
        """Whether the launcher closed this connection within `timeout` (an
        exiting launcher does that last, after its spares are gone)."""
        done, _ = await asyncio.wait([self._task], timeout=timeout)
        return bool(done)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _request(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._task.done():
            raise Unavailable("the connection to the launcher is closed")
        rid = next(self._ids)
        try:
            frame = wire.encode({"id": rid, **body})
        except ValueError as exc:
            raise InvalidArgument(f"the launcher cannot take this request: {exc}") from exc
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        try:
            self._writer.write(frame)
            await self._writer.drain()
            answer = await future
        except OSError as exc:
            raise Unavailable(f"launcher connection failed: {exc}") from exc
        finally:
            self._waiting.pop(rid, None)
        if not answer.get("ok"):
            raise IsolationError(str(answer.get("error", "launcher refused the request")))
        return answer

    async def _read_loop(self) -> None:
        try:
            while True:
                prefix = await self._reader.readexactly(wire.PREFIX.size)
                (length,) = wire.PREFIX.unpack(prefix)
                if length > wire.MAX_FRAME:
                    log.warning("the launcher sent a frame of %d bytes; reconnecting", length)
                    return
                self._dispatch(wire.decode(await self._reader.readexactly(length)))
        except asyncio.IncompleteReadError:
            pass  # the launcher closed the connection (or died)
        except (OSError, ValueError, TypeError) as exc:
            log.warning("the connection to the launcher failed: %s", exc)
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(Unavailable("the launcher closed the connection"))
            # Ended from this side too (a protocol error): the launcher drops us.
            self._writer.close()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("event") == "exit":
            exit_ = JobExit(**{k: v for k, v in message.items() if k != "event"})
            for callback in self._callbacks:
                # After the launch answer of the same read is handled: a job that
                # ends at once must be seen as started first (call_soon is FIFO).
                asyncio.get_running_loop().call_soon(callback, exit_)
            return
        future = self._waiting.get(message.get("id", -1))
        if future is not None and not future.done():
            future.set_result(message)


async def _try_ping(socket_path: str) -> bool:
    try:
        client = await LauncherClient.connect(socket_path)
    except Unavailable:
        return False
    try:
        await asyncio.wait_for(client.ping(), 2.0)
        return True
    except (Unavailable, IsolationError, TimeoutError):
        return False
    finally:
        await client.close()


def spawn_launcher(
    socket_path: str,
    state_dir: str,
    python: str = sys.executable,
    idle_exit_s: float = IDLE_EXIT_S,
    user_namespace: str = "off",
) -> int:
    """Start a launcher in a session of its own (it outlives a daemon that
    dies; see the launcher's module docstring for when it exits)."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    log_path = os.path.join(state_dir, "launcher.log")
    argv = [
        python,
        "-m",
        "joblet.isolation.launcher",
        "--socket",
        socket_path,
        "--state-dir",
        state_dir,
        "--idle-exit",
        str(idle_exit_s),
        "--user-namespace",
        user_namespace,
    ]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": ":".join(sys.path)}
    return os.posix_spawn(python, argv, env, file_actions=actions, setsid=True)


async def ensure_launcher(
    socket_path: str,
    state_dir: str,
    python: str = sys.executable,
    idle_exit_s: float = IDLE_EXIT_S,
    user_namespace: str = "off",
) -> int | None:
    """Connect to a running launcher, or start one and wait until it answers.
    Returns the pid of the launcher it started (the caller's child, to reap
    once it ends), None when one already answered."""
    if await _try_ping(socket_path):
        return None
    pid = spawn_launcher(socket_path, state_dir, python, idle_exit_s, user_namespace)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if await _try_ping(socket_path):
            return pid
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            log_path = os.path.join(state_dir, "launcher.log")
            raise IsolationError(f"the launcher exited at start; see {log_path}")
        await asyncio.sleep(START_POLL_S)
    raise Unavailable(f"the launcher did not answer on {socket_path} within {START_TIMEOUT_S}s")


def wait_process_gone(pid: int, timeout: float, procfs: str = "/proc") -> bool:
    """Whether `pid` ended within `timeout`. A launcher this daemon started is
    its child and is reaped here; another one counts as gone once it is a
    zombie, gone, or its pid names a newer process."""
    started = read_start_ticks(pid, procfs)
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0]:
                return True
        now = read_start_ticks(pid, procfs)
        if now is None or now != started:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
