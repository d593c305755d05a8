"""Writing a job's uploads into its workspace without ever leaving it.

Every path component below the workspace is opened relative to its parent's
directory fd with O_NOFOLLOW, so a symlink already in the workspace (planted by
a reused directory, a volume, or an earlier upload) makes the write fail
instead of landing outside. Paths are resolved by us, one component at a
time; the kernel never walks a multi-component path for us.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from joblet.errors import InvalidArgument, JobletError, ResourceExhausted
from joblet.jobs.model import Upload

DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755
# setuid and setgid are never honoured: an upload must not become a way to
# hand a job (or a later job sharing a volume) a privileged binary.
_ALLOWED_MODE_BITS = 0o1777
_COPY_CHUNK = 64 << 20
_NAME_MAX = 255  # bytes per component, Linux's NAME_MAX

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# What a planted symlink, special file or file-for-a-directory makes the kernel say.
_IN_THE_WAY = frozenset(
    {errno.ELOOP, errno.ENOTDIR, errno.EEXIST, errno.EMLINK, errno.EISDIR, errno.ENXIO}
)
# O_NONBLOCK: opening a FIFO someone left in the workspace must not hang us.
_FILE_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def normalize_upload_path(path: str) -> str:
    """`path` normalised, or InvalidArgument when it is empty, absolute, holds a
    NUL byte, or leaves the workspace."""
    if not path or not path.strip():
        raise InvalidArgument("upload path is empty")
    if "\0" in path:
        raise InvalidArgument(f"upload path {path!r} contains a NUL byte")
    if path.startswith("/"):
        raise InvalidArgument(f"upload path {path!r} must be relative to the workspace")
    if _CONTROL.search(path):
        raise InvalidArgument(f"upload path {path!r} contains a control character")
    # Refused even where it would stay inside: a ".." is never what a client
    # that walked a local directory sends.
    if ".." in path.split("/"):
        raise InvalidArgument(f"upload path {path!r} leaves the workspace: '..' is not allowed")
    normal = posixpath.normpath(path)
    if normal == ".":
        raise InvalidArgument(f"upload path {path!r} leaves the workspace")
    for part in normal.split("/"):
        if len(part.encode()) > _NAME_MAX:
            raise InvalidArgument(
                f"upload path {path!r} has a component longer than {_NAME_MAX} bytes"
            )
    return normal


def upload_mode(mode: int, is_directory: bool) -> int:
    """The permission bits actually applied: a default when 0, never setuid/setgid."""
    if mode == 0:
        return DEFAULT_DIR_MODE if is_directory else DEFAULT_FILE_MODE
    return mode & _ALLOWED_MODE_BITS


def write_uploads(
    workspace: Path, uploads: Sequence[Upload], owner: tuple[int, int] | None = None
) -> tuple[str, ...]:
    """Write `uploads` (files and directories) under `workspace`, which must
    exist; missing parent directories are created. Returns the normalised paths
    written, in order. `owner` (uid, gid) chowns what is created, for jobs that
    run unprivileged. Raises InvalidArgument when a path would escape."""
    written: list[str] = []
    with _open_dir_fd(os.fspath(workspace)) as root_fd:
        for upload in uploads:
            path = normalize_upload_path(upload.path)
            try:
                _write_one(root_fd, path, upload, owner)
            except OSError as exc:
                raise _translate(path, exc) from exc
            written.append(path)
    return tuple(written)


def _write_one(root_fd: int, path: str, upload: Upload, owner: tuple[int, int] | None) -> None:
    *parents, leaf = path.split("/")
    mode = upload_mode(upload.mode, upload.is_directory)
    with _walk(root_fd, parents, owner) as parent_fd:
        if upload.is_directory:
            with _make_dir(parent_fd, leaf, owner) as dir_fd:
                os.fchmod(dir_fd, mode)
        else:
            _write_file(parent_fd, leaf, upload, mode, owner)


@contextmanager
def _open_dir_fd(path: str, dir_fd: int | None = None) -> Iterator[int]:
    fd = os.open(
        path, _DIR_FLAGS if dir_fd is not None else _DIR_FLAGS & ~os.O_NOFOLLOW, dir_fd=dir_fd
    )
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def _walk(root_fd: int, parents: list[str], owner: tuple[int, int] | None) -> Iterator[int]:
    """A directory fd for root/parents..., creating missing directories."""
    fd = os.dup(root_fd)
    try:
        for name in parents:
            with _make_dir(fd, name, owner) as child:
                os.close(fd)
                fd = os.dup(child)
        yield fd
    finally:
        os.close(fd)


@contextmanager
def _make_dir(parent_fd: int, name: str, owner: tuple[int, int] | None) -> Iterator[int]:
    """Open directory `name` in `parent_fd`, creating it (0755) when missing."""
    created = False
    try:
        os.mkdir(name, DEFAULT_DIR_MODE, dir_fd=parent_fd)
        created = True
    except FileExistsError:
        pass  # an existing directory is reused; anything else fails the open below
    with _open_dir_fd(name, parent_fd) as fd:
        if created:
            os.fchmod(fd, DEFAULT_DIR_MODE)  # mkdir's mode is masked by the umask
            if owner is not None:
                os.fchown(fd, *owner)
        yield fd


def _write_file(
    parent_fd: int, name: str, upload: Upload, mode: int, owner: tuple[int, int] | None
) -> None:
    try:
        fd = os.open(name, _FILE_FLAGS | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=parent_fd)
    except FileExistsError:
        fd = _open_existing_file(parent_fd, name)
    try:
        if upload.source:
            _copy_from(fd, upload.source)
        else:
            _write_all(fd, upload.content)
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
    finally:
        os.close(fd)


def _open_existing_file(parent_fd: int, name: str) -> int:
    """Reopen an existing regular file for rewriting. A hard link (st_nlink > 1)
    could be a name for a file outside the workspace, so it is refused too."""
    before = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if not stat.S_ISREG(before.st_mode):
        raise OSError(errno.EEXIST, "not a regular file")
    fd = os.open(name, _FILE_FLAGS, dir_fd=parent_fd)
    try:
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode) or after.st_nlink != 1:
            raise OSError(errno.EMLINK, "not a regular file with a single link")
        os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view) :]


def _copy_from(fd: int, source: str) -> None:
    """Copy a staged file into `fd` in the kernel (no bytes through Python)."""
    src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.set_blocking(fd, True)
        while os.sendfile(fd, src, None, _COPY_CHUNK):
            pass
    finally:
        os.close(src)


def _translate(path: str, exc: OSError) -> JobletError:
    """One OS error while writing `path` as the domain error a user sees."""
    if exc.errno in _IN_THE_WAY:
        return InvalidArgument(
            f"upload {path!r} cannot be written: a symlink, special file or file of another"
            f" kind is in the way in the workspace ({exc.strerror})"
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ResourceExhausted(f"upload {path!r} does not fit: the workspace is full")
    return JobletError(f"upload {path!r} cannot be written: {exc.strerror}")
