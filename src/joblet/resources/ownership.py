"""The lock that makes a daemon the owner of its cgroup parent (the shell of `owner`).

The lock is flock(2) on LOCK_DIR/<parent>.lock, taken through a descriptor
opened O_CLOEXEC and kept for the daemon's life. The kernel drops it when the
daemon dies, however it dies (kill -9 too), and the launcher and the helpers,
started by exec, never inherit it: a launcher that outlives its daemon never
keeps that root from starting again. The record, LOCK_DIR/<parent>.owner, is
replaced atomically and stays when the daemon is gone: it tells whose job
groups the parent holds. LOCK_DIR is on /run, a tmpfs that goes at reboot,
as the cgroups do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from joblet.errors import FailedPrecondition, IsolationError, JobletError
from joblet.resources._names import parent_path
from joblet.resources.owner import (
    OwnerRecord,
    lock_name,
    owns_leftovers,
    parse_owner_record,
    refusal,
    render_owner_record,
)

DEFAULT_LOCK_DIR = Path("/run/joblet/cgroup-parents")
# A daemon of the same root that is still exiting (a restart right after a
# SIGTERM) holds the lock a little longer.
ACQUIRE_WAIT_S = 2.0


class ParentOwnedError(FailedPrecondition):
    """The cgroup parent belongs to another daemon (or to another root's jobs)."""


@dataclass
class ParentClaim:
    """A held cgroup parent; `release` (or the daemon's death) gives it up."""

    parent: str
    root: str
    previous: OwnerRecord | None  # the record found before this daemon wrote its own
    _fd: int = field(repr=False)
    _paths: tuple[Path, Path] = field(repr=False)  # the record, then the lock file
    _job_groups: Callable[[], Sequence[str]] = field(repr=False)

    def owns_leftovers(self) -> bool:
        """Whether job groups already under the parent may be this root's."""
        return owns_leftovers(self.root, self.previous)

    def release(self) -> None:
        """Give the parent up. When no job group is left under it there is nothing
        the record must prove: record and lock file go, still under the lock
        (`claim_parent` checks that the file it locked is still the one named)."""
        if self._fd < 0:
            return
        try:
            if not self._job_groups():
                for path in self._paths:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        except (OSError, JobletError):
            pass  # the record stays: a safe default
        finally:
            os.close(self._fd)
            self._fd = -1


def normal_root(root: Path | str) -> str:
    """The root as the record names it: absolute, without '.' or '//'."""
    return os.path.normpath(os.path.abspath(root))


def read_owner(parent: str, lock_dir: Path = DEFAULT_LOCK_DIR) -> OwnerRecord | None:
    try:
        return parse_owner_record((lock_dir / f"{lock_name(parent)}.owner").read_text())
    except (OSError, UnicodeDecodeError):
        return None


def forget_owner(parent: str, lock_dir: Path = DEFAULT_LOCK_DIR) -> None:
    """Remove a parent's record and lock file once its daemon is known dead and its
    job groups gone (a test's or benchmark's teardown; a daemon that ends with no
    group left does this itself). Never while a daemon may hold the lock."""
    name = lock_name(str(parent_path(parent)))
    for suffix in (".owner", ".lock"):
        with contextlib.suppress(FileNotFoundError):
            (lock_dir / f"{name}{suffix}").unlink()


def claim_parent(
    parent: str,
    root: Path | str,
    job_groups: Callable[[], Sequence[str]],
    lock_dir: Path = DEFAULT_LOCK_DIR,
    wait_s: float = ACQUIRE_WAIT_S,
) -> ParentClaim:
    """Lock `parent` for the daemon of `root` and record it as the owner.

    `job_groups` lists the job groups under the parent; it is asked only when
    the parent was last owned by another root. Raises ParentOwnedError with a
    one-line reason when the parent is not this daemon's to take.
    """
    me = normal_root(root)
    name = lock_name(str(parent_path(parent)))
    record_path, lock_path = lock_dir / f"{name}.owner", lock_dir / f"{name}.lock"
    fd, alive = _open_locked(lock_path, wait_s)
    try:
        owner = read_owner(parent, lock_dir)
        foreign = 0 if alive or owner is None or owner.root == me else len(job_groups())
        reason = refusal(parent, me, owner, alive, foreign)
        if reason is not None:
            raise ParentOwnedError(reason)
        _write_atomic(record_path, render_owner_record(OwnerRecord(me, os.getpid(), parent)))
    except BaseException:
        os.close(fd)
        raise
    return ParentClaim(parent, me, owner, fd, (record_path, lock_path), job_groups)


def _open_locked(path: Path, wait_s: float) -> tuple[int, bool]:
    """An open descriptor of the lock file and whether another process holds it.

    A releasing owner may unlink the file between our open and our lock: the
    lock would then be on a file nobody else can find, so it is taken again on
    the file the name now gives.
    """
    while True:
        try:
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise IsolationError(f"cannot open {path}: {exc.strerror}") from exc
        try:
            if not _lock(fd, wait_s):
                return fd, True
            if _same_file(fd, path):
                return fd, False
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def _lock(fd: int, wait_s: float) -> bool:
    """Take the lock within `wait_s`; False when another process keeps it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise IsolationError(f"cannot lock cgroup parent: {exc.strerror}") from exc
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise IsolationError(f"cannot write {path}: {exc.strerror}") from exc
