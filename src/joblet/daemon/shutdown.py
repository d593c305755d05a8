"""`joblet shutdown`: stop the daemon serving a root, and say whether it did.

The daemon is found by the lock it holds on ROOT/run/daemon.lock (rootlock).
What the stop does to running jobs travels in a request file next to it,
ROOT/run/shutdown.request, written before the SIGTERM: a signal carries no
argument, and `systemctl stop` sends the same SIGTERM without a file (the
daemon then does what `joblet.stopJobsOnShutdown` says). The daemon takes the
file when the signal arrives and removes a stale one at start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joblet.config.model import RootLayout
from joblet.daemon import rootlock
from joblet.errors import FailedPrecondition, JobletError

REQUEST_FILE = "shutdown.request"
STOP_JOBS = "stop-jobs"
POLL_S = 0.05


def request_path(layout: RootLayout) -> Path:
    return layout.run / REQUEST_FILE


def parse_request(text: str) -> bool | None:
    """True when a request asks to stop the jobs; None when it does not (the
    daemon then follows `joblet.stopJobsOnShutdown`)."""
    return True if text.strip() == STOP_JOBS else None


def write_request(layout: RootLayout, stop_jobs: bool) -> None:
    """What the next stop does: with `stop_jobs` it stops the running jobs,
    else it follows the config. Whole or not at all: the daemon may read it
    at any moment."""
    path = request_path(layout)
    if not stop_jobs:
        clear_request(layout)
        return
    tmp = path.with_name(f".{REQUEST_FILE}.{os.getpid()}")
    tmp.write_text(f"{STOP_JOBS}\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def take_request(layout: RootLayout) -> bool | None:
    """The request of `joblet shutdown`, removed; None when there is none."""
    path = request_path(layout)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        text = ""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return parse_request(text)


def clear_request(layout: RootLayout) -> None:
    """At start: a request left by a shutdown that never reached its daemon
    (it died first) must not decide the next stop."""
    with contextlib.suppress(FileNotFoundError):
        request_path(layout).unlink()


def exited(pid: int, procfs: str = "/proc") -> bool:
    """Gone, or a zombie its parent has not reaped yet: it runs no more."""
    try:
        with open(f"{procfs}/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class Stopped:
    pid: int
    seconds: float


def shutdown_daemon(
    layout: RootLayout,
    stop_jobs: bool,
    timeout: float,
    *,
    holder: Callable[[RootLayout], int | None] = rootlock.holder,
    kill: Callable[[int, int], None] = os.kill,
    is_gone: Callable[[int], bool] = exited,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Stopped:
    """Ask the daemon serving `layout.root` to stop and wait until it has
    released the root and exited. Raises
    FailedPrecondition when none serves it, JobletError when it does not
    stop within `timeout`."""
    pid = holder(layout)
    if pid is None:
        raise FailedPrecondition(f"no joblet daemon serves {layout.root}")
    if pid <= 0:
        raise JobletError(f"the daemon serving {layout.root} wrote no pid in its lock file")
    write_request(layout, stop_jobs)
    start = clock()
    try:
        kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended just now: the wait below sees the lock free
    except PermissionError as exc:
        clear_request(layout)
        raise JobletError(f"cannot signal the daemon (pid {pid}): {exc.strerror}") from exc
    # The lock goes at the daemon's last step; then only its exit is left.
    while holder(layout) is not None or not is_gone(pid):
        if clock() - start >= timeout:
            raise JobletError(
                f"the daemon (pid {pid}) has not exited after {timeout:g}s; its log says why"
            )
        sleep(POLL_S)
    return Stopped(pid, clock() - start)
