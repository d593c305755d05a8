"""One daemon per root: an flock on ROOT/run/daemon.lock held while it serves.

The kernel drops the lock when the daemon dies, however it dies, so a stale
file never blocks a start. `joblet teardown` asks who holds it and refuses to
pull the objects of a running daemon from under it.
"""

from __future__ import annotations

import fcntl
import os

from joblet.config.model import RootLayout
from joblet.errors import FailedPrecondition

LOCK_FILE = "daemon.lock"


def _lock_path(layout: RootLayout) -> str:
    return str(layout.run / LOCK_FILE)


def hold_root(layout: RootLayout) -> int:
    """Lock the root for this process; the fd holds it (close it to release).
    Close-on-exec, so the helpers and the launcher never hold it."""
    fd = os.open(_lock_path(layout), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        raise FailedPrecondition(
            f"another joblet daemon{_pid_text(holder)} serves {layout.root}"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def holder(layout: RootLayout) -> int | None:
    """The pid of the daemon serving the root (0 when unknown), None when none does."""
    try:
        fd = os.open(_lock_path(layout), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd)
    finally:
        os.close(fd)  # releases the probe's own lock too
    return None


def _read_pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0)
    except (OSError, ValueError):
        return 0


def _pid_text(pid: int) -> str:
    return f" (pid {pid})" if pid else ""
