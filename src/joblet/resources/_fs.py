"""Small file helpers shared by the cgroup backends.

OS errors become `IsolationError` here, once, with the file and value named, so
the backends stay free of try/except noise.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from joblet.errors import IsolationError

# Job groups are removed (and waited for) first; a parent group still busy
# after this holds a live process, which no wait would end.
PARENT_BUSY_WAIT_S = 0.5


# A read this size returns a whole cgroup or /proc file in one call.
READ_CHUNK = 64 * 1024


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist (an absent controller file)."""
    try:
        return read_small(path).decode(errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IsolationError(f"cannot read {path}: {exc.strerror}") from exc


def read_small(path: str | Path) -> bytes:
    """A small kernel file's bytes: a plain open/read/close, a quarter of the
    cost of `open()`'s buffered text layers (the samplers read some twenty
    files per job every interval)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts = [os.read(fd, READ_CHUNK)]
        while len(parts[-1]) == READ_CHUNK:
            parts.append(os.read(fd, READ_CHUNK))
        return b"".join(parts)
    finally:
        os.close(fd)


def write_value(path: Path, value: str) -> None:
    """Write `value` in one write(2): cgroupfs parses each write as one command."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise IsolationError(f"cannot open {path}: {exc.strerror}") from exc
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise IsolationError(f"kernel refused {value!r} for {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def make_dir(path: Path, *, parents: bool = True) -> None:
    """`parents=False`: one mkdir(2), for a group whose parent exists (a job's)."""
    try:
        if parents:
            path.mkdir(parents=True, exist_ok=True)
        else:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
    except OSError as exc:
        raise IsolationError(f"cannot create cgroup {path}: {exc.strerror}") from exc


def walk_groups(root: Path) -> list[Path]:
    """`root` and every cgroup below it, parents before children."""
    try:
        info = os.stat(root)
    except OSError:
        return []
    if not stat.S_ISDIR(info.st_mode):
        return []
    found = [root]
    if info.st_nlink == 2:
        # A directory's link count is 2 + its sub-directories (cgroupfs and
        # tmpfs keep it so): no sub-group, so no listing of the ~40 control
        # files a v1 group holds. The samplers ask this of every job each
        # interval.
        return found
    for dirpath, dirnames, _ in os.walk(root):
        found.extend(Path(dirpath) / name for name in sorted(dirnames))
    return found


def read_pids(root: Path) -> set[int]:
    """Pids listed in cgroup.procs of `root` and all its sub-cgroups."""
    pids: set[int] = set()
    for group in walk_groups(root):
        text = read_text(group / "cgroup.procs") or ""
        pids.update(int(line) for line in text.split() if line.strip())
    return pids


def kill_pids(pids: Iterable[int]) -> None:
    for pid in pids:
        # It may have exited between reading cgroup.procs and now.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def remove_tree(root: Path, timeout_s: float = 2.0) -> None:
    """rmdir `root` and its sub-cgroups bottom-up.

    rmdir answers EBUSY for a moment after the last task died (the kernel
    unlinks exiting tasks asynchronously), so it is retried briefly.
    """
    for group in reversed(walk_groups(root)):
        if not wait_for(functools.partial(_try_rmdir, group), timeout_s):
            raise IsolationError(f"cannot remove cgroup {group}: still busy")


def rmdir_once(path: Path) -> bool:
    """One rmdir(2) of a group, no waiting: True when it is gone. Busy, not
    empty or any other error: False (the caller's slow path says why)."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _try_rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return False
        if exc.errno == errno.ENOTEMPTY and not any(p.is_dir() for p in path.iterdir()):
            # A fake (tmpfs) tree keeps the files we wrote; cgroupfs never says this.
            for child in path.iterdir():
                child.unlink()
            return _try_rmdir(path)
        raise IsolationError(f"cannot remove cgroup {path}: {exc.strerror}") from exc
    return True


def wait_for(done: Callable[[], bool], timeout_s: float, interval_s: float = 0.005) -> bool:
    """Poll `done` until it is true or `timeout_s` passed; the last answer."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline:
            return done()
        time.sleep(interval_s)
        interval_s = min(interval_s * 2, 0.05)
    return True
