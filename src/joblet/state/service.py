"""The state helper process: a backend behind a Unix socket.

`python -m joblet.state --config FILE` (or `main(argv)`) reads the `state:`
section, opens the backend (retrying with backoff while it is unreachable
rather than exiting, so a supervisor does not crash-loop it), listens on the
socket (mode 0600, a stale one removed first) and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from joblet.errors import ConfigError, JobletError
from joblet.state.backends import StateBackend, StateBackendError, open_backend
from joblet.state.config import StateConfig, load_state_config
from joblet.state.handler import RequestHandler
from joblet.state.retry import WritePolicy

log = logging.getLogger(__name__)

EXIT_ERROR = 1
EXIT_USAGE = 2


class StateServiceError(JobletError):
    """The helper cannot take its socket."""


def clear_stale_socket(path: Path) -> None:
    """Remove a socket nobody listens on; refuse if someone does or it is not a socket."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StateServiceError(f"{path} exists and is not a socket; not removing it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        if probe.connect_ex(str(path)) == 0:
            raise StateServiceError(f"another state helper is listening on {path}")
    log.info("state: removing stale socket %s", path)
    path.unlink(missing_ok=True)


class StateService:
    """Serves `backend` on `socket_path` while entered (an async context manager)."""

    def __init__(self, backend: StateBackend, socket_path: Path, policy: WritePolicy) -> None:
        self._handler = RequestHandler(backend, policy)
        self._socket_path = socket_path
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> StateService:
        clear_stale_socket(self._socket_path)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self._socket_path))
        os.chmod(self._socket_path, 0o600)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        # asyncio.Server owns the connection tasks but (before 3.12) does not end
        # them on close; we tracked them, so we cancel them here.
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        self._socket_path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._handler.serve(reader, writer)
        except asyncio.CancelledError:
            # Only __aexit__ cancels these. Python 3.11's asyncio.Server calls
            # task.exception() on them, which raises for a cancelled task and
            # logs a spurious traceback, so the task must end normally.
            pass
        finally:
            self._connections.discard(task)


async def open_backend_patiently(config: StateConfig, stop: asyncio.Event) -> StateBackend | None:
    """The configured backend, retried with backoff until it opens; None if stopped first."""
    delay = 0.5
    while not stop.is_set():
        try:
            return await open_backend(config)
        except StateBackendError as exc:
            log.error(
                "state: cannot open the %s backend: %s; retrying in %.1fs",
                config.backend,
                exc,
                delay,
            )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()
        delay = min(delay * 2, 30.0)
    return None


async def run_service(config: StateConfig, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (by default: until SIGTERM or SIGINT)."""
    stop = stop or _stop_on_signals()
    backend = await open_backend_patiently(config, stop)
    if backend is None:
        return
    policy = WritePolicy(timeout_s=config.write_timeout_s, retries=config.write_retries)
    try:
        async with StateService(backend, config.socket, policy):
            log.info("state: serving the %s backend on %s", config.backend, config.socket)
            await stop.wait()
            log.info("state: stopping")
    finally:
        await backend.close()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="joblet state", description="Serve job records to the joblet daemon."
    )
    parser.add_argument("--config", type=Path, required=True, help="joblet-config.yml")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    faulthandler.enable()  # a crash in a C extension leaves its stacks in the log
    try:
        config = load_state_config(args.config)
    except ConfigError as exc:
        log.error("state: %s", exc)
        return EXIT_USAGE
    try:
        asyncio.run(run_service(config))
    except JobletError as exc:
        log.error("state: %s", exc)
        return EXIT_ERROR
    return 0
