"""The daemon's two helper processes and its clients of them.

`persist` keeps log and metric history, `state` keeps job records. The daemon
starts and supervises both; its clients buffer while a helper is down and
replay when it is back, so a job never waits on a helper.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from joblet.config.model import RootLayout
from joblet.daemon.supervisor import HelperSupervisor

if TYPE_CHECKING:
    from joblet.jobs.model import Job
    from joblet.jobs.ports import JobListener
    from joblet.persist.client import PersistClient
    from joblet.persist.config import PersistConfig
    from joblet.persist.query_client import PersistQueryClient
    from joblet.state.client import StateClient
    from joblet.state.config import StateConfig

log = logging.getLogger(__name__)

LOAD_TIMEOUT_S = 30.0
HELPER_NAMES = ("state", "persist")
PRIVATE_DIR_MODE = 0o700


@dataclass
class Helpers:
    persist: PersistClient
    persist_query: PersistQueryClient
    state: StateClient
    persist_config: PersistConfig
    state_config: StateConfig
    supervisors: tuple[HelperSupervisor, ...]


def prepare_layout(layout: RootLayout) -> None:
    """The root's directories (idempotent), each private to root: they hold
    jobs' workspaces and logs, keys, sockets and volume images. The root
    itself stays listable but never writable by others."""
    for directory in layout.all_dirs():
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(PRIVATE_DIR_MODE)
    mode = layout.root.stat().st_mode & 0o7777
    if mode & 0o022:
        layout.root.chmod(mode & ~0o022)


@contextlib.asynccontextmanager
async def supervise_helpers(
    config_path: Path, layout: RootLayout
) -> AsyncIterator[tuple[HelperSupervisor, ...]]:
    """Start both helper processes and keep them running while entered.

    Light on imports on purpose: `joblet serve` enters this before it imports
    the rest of the daemon, so that the helpers start (and the state helper
    opens its store) while the daemon is still importing.
    """
    async with contextlib.AsyncExitStack() as stack:
        supervisors = []
        for name in HELPER_NAMES:
            supervisor = HelperSupervisor(name, config_path, layout.run / f"{name}.log")
            supervisors.append(await stack.enter_async_context(supervisor))
        yield tuple(supervisors)


@contextlib.asynccontextmanager
async def supervise_ui(
    config_path: Path, layout: RootLayout, enabled: bool
) -> AsyncIterator[HelperSupervisor | None]:
    """`joblet ui` (ui.enabled), restarted like the other helpers when it dies.
    It is a client of the daemon's gRPC port only: a crashed UI touches no job."""
    if not enabled:
        yield None
        return
    async with HelperSupervisor("ui", config_path, layout.run / "ui.log") as supervisor:
        yield supervisor


@contextlib.asynccontextmanager
async def start_helpers(
    config_path: Path,
    layout: RootLayout,
    supervisors: Sequence[HelperSupervisor] | None = None,
) -> AsyncIterator[Helpers]:
    """Clients of both helpers; starts the helpers too unless `supervisors`
    (already running, owned by the caller) are given."""
    from joblet.persist.client import PersistClient
    from joblet.persist.config import load_persist_config
    from joblet.persist.query_client import PersistQueryClient
    from joblet.state.client import StateClient
    from joblet.state.config import load_state_config

    persist_config = load_persist_config(config_path)
    state_config = load_state_config(config_path)
    async with contextlib.AsyncExitStack() as stack:
        if supervisors is None:
            supervisors = await stack.enter_async_context(supervise_helpers(config_path, layout))
        await _wait_for_sockets((state_config.socket, persist_config.ipc_socket))
        persist = PersistClient(persist_config.ipc_socket, persist_config.client_buffer_bytes)
        await stack.enter_async_context(persist)
        query = PersistQueryClient(persist_config.grpc_socket)
        stack.push_async_callback(query.close)
        state = await StateClient.connect(state_config.socket, state_config.buffer_size)
        stack.push_async_callback(state.close)
        # Unwound first: the clients' closing flushes need live helpers.
        for supervisor in supervisors:
            stack.callback(supervisor.restart_now)
        yield Helpers(persist, query, state, persist_config, state_config, tuple(supervisors))


async def _wait_for_sockets(paths: tuple[Path, ...], timeout: float = 10.0) -> None:
    """Give freshly started helpers a moment to listen; the clients buffer and
    reconnect anyway, so this only keeps the start quiet and fast."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not all(p.exists() for p in paths) and loop.time() < deadline:
        await asyncio.sleep(0.02)


class JobListeners:
    """Tells every listener of each job change, in order: the state client
    first, so a record is on its way before anyone acts on the change."""

    def __init__(self, first: JobListener) -> None:
        self._first = first
        self._others: list[JobListener] = []

    def add(self, listener: JobListener) -> None:
        self._others.append(listener)

    def changed(self, job: Job) -> None:
        self._first.changed(job)
        for listener in self._others:
            listener.changed(job)

    def deleted(self, job_id: str) -> None:
        self._first.deleted(job_id)
        for listener in self._others:
            listener.deleted(job_id)

    def push(self) -> None:
        self._first.push()

    async def recorded(self, timeout: float) -> bool:
        return await self._first.recorded(timeout)


class StateListener:
    """Hands every job change to the state client (which never blocks)."""

    def __init__(self, state: StateClient) -> None:
        self._state = state

    def changed(self, job: Job) -> None:
        self._state.put(job)

    def deleted(self, job_id: str) -> None:
        self._state.delete(job_id)

    def push(self) -> None:
        self._state.push()

    async def recorded(self, timeout: float) -> bool:
        return await self._state.stored(timeout)
