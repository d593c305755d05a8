"""Removing a directory tree that a job wrote, whatever its shape.

A job controls its workspace: it may leave a tree deeper than Python's
recursion limit (or than PATH_MAX), symlinks to anywhere on the host, files
the daemon cannot remove. `shutil.rmtree` recurses (RecursionError at about a
thousand levels) and keeps a descriptor open per level. Here the tree is
flattened instead: every subdirectory found is renamed up into the top
directory and emptied from there, so the work is a loop with two open
descriptors, whatever the depth. Nothing is resolved by path: each directory
is opened relative to its parent with O_NOFOLLOW, a symlink is unlinked,
never followed. One entry that cannot go is reported and the rest still goes.
"""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PARKED_PREFIX = ".joblet-removing-"


@dataclass(frozen=True)
class RemovalFailure:
    """An entry left behind: where it is now, why, and where it was in the
    tree when that differs (its directory was moved up to be emptied)."""

    path: str
    reason: str
    was: str = ""

    def __str__(self) -> str:
        moved = f" (was {self.was})" if self.was and self.was != self.path else ""
        return f"{self.path}{moved}: {self.reason}"


@contextmanager
def _open_dir(name: str | Path, dir_fd: int | None = None) -> Iterator[int]:
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


class _Flattener:
    """The state of one removal: the top directory and its descriptor, where
    each parked directory came from, and what could not be removed."""

    def __init__(self, top: Path, top_fd: int) -> None:
        self.top = top
        self.top_fd = top_fd
        self.origin: dict[str, str] = {}  # parked name -> path it had in the tree
        self.failures: list[RemovalFailure] = []
        self._names = (f"{_PARKED_PREFIX}{n}" for n in itertools.count())

    def fail(self, path: str, exc: OSError, was: str) -> None:
        self.failures.append(RemovalFailure(path, exc.strerror or str(exc), was))

    def free_name(self) -> str:
        for name in self._names:
            try:
                os.stat(name, dir_fd=self.top_fd, follow_symlinks=False)
            except FileNotFoundError:
                return name
        raise AssertionError("unreachable: the name generator is endless")

    def empty(self, dir_fd: int, path: str, was: str) -> None:
        """Unlink what `dir_fd` (now at `path`, once at `was`) holds; park
        its subdirectories at the top."""
        with os.scandir(dir_fd) as entries:
            names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for name, is_dir in names:
            try:
                if is_dir:
                    parked = self.free_name()
                    os.rename(name, parked, src_dir_fd=dir_fd, dst_dir_fd=self.top_fd)
                    self.origin[parked] = f"{was}/{name}"
                else:
                    os.unlink(name, dir_fd=dir_fd)
            except OSError as exc:
                self.fail(f"{path}/{name}", exc, f"{was}/{name}")

    def remove_parked(self) -> None:
        """Empty and remove each parked directory; emptying parks more."""
        while self.origin:
            parked, was = self.origin.popitem()
            path = f"{self.top}/{parked}"
            try:
                with _open_dir(parked, self.top_fd) as fd:
                    self.empty(fd, path, was)
                os.rmdir(parked, dir_fd=self.top_fd)
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:  # else an entry in it is reported
                    self.fail(path, exc, was)


def remove_tree(top: Path) -> list[RemovalFailure]:
    """Remove `top` and all below it; what could not be removed, [] when all went.

    A `top` that is missing is already removed; one that is a symlink or a
    file is unlinked (a link's target is never touched).
    """
    try:
        top_fd = os.open(top, _DIR_FLAGS)
    except FileNotFoundError:
        return []
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            return [RemovalFailure(str(top), exc.strerror or str(exc))]
        return _unlink(top)
    try:
        flattener = _Flattener(top, top_fd)
        flattener.empty(top_fd, str(top), str(top))
        flattener.remove_parked()
    finally:
        os.close(top_fd)
    if flattener.failures:
        return flattener.failures  # top is not empty: leave it
    try:
        os.rmdir(top)
    except OSError as exc:
        return [RemovalFailure(str(top), exc.strerror or str(exc))]
    return []


def _unlink(path: Path) -> list[RemovalFailure]:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [RemovalFailure(str(path), exc.strerror or str(exc))]
    return []
