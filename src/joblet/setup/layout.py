"""The daemon's directories and the files `joblet setup` writes, created safely.

Files are written to a temporary name created with O_EXCL and the final mode
already set, then renamed into place: a private key is never readable by
others, not even between open and chmod, and a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

import grpc

from joblet.config.model import RootLayout
from joblet.errors import JobletError

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
# Every directory under the root is root's alone: the config one holds the CA
# key, the others jobs' workspaces (where a job may leave a setuid binary or
# a device node), logs, sockets and volume images.
DIR_MODE = 0o700
CONFIG_DIR_MODE = 0o700


class SetupError(JobletError):
    """Set-up cannot go on: a file exists, the CA is missing, a name is bad."""

    code = grpc.StatusCode.FAILED_PRECONDITION


def create_layout(layout: RootLayout) -> list[Path]:
    """Create every directory of `layout` that is missing; return those created."""
    created: list[Path] = []
    for path in layout.all_dirs():
        mode = CONFIG_DIR_MODE if path == layout.config else DIR_MODE
        if _make_dir(path, mode):
            created.append(path)
    return created


def _make_dir(path: Path, mode: int) -> bool:
    try:
        path.mkdir(mode=mode, parents=True)
    except FileExistsError as exc:
        if not path.is_dir():
            raise SetupError(f"{path} exists and is not a directory") from exc
        return False
    except OSError as exc:
        raise SetupError(f"cannot create {path}: {exc.strerror}") from exc
    # mkdir's mode is filtered by the umask; set exactly what we mean.
    path.chmod(mode)
    return True


def refuse_existing(paths: Iterable[Path], force: bool) -> None:
    """Raise `SetupError` naming the first of `paths` that exists, unless `force`."""
    if force:
        return
    for path in paths:
        if path.exists() or path.is_symlink():
            raise SetupError(f"{path} already exists; use --force to overwrite it")


def write_file(path: Path, text: str, mode: int) -> None:
    """Atomically replace `path` with `text`, created with `mode` from the start."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, mode)
    except OSError as exc:
        raise SetupError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), mode)  # the umask may have narrowed the mode
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SetupError(f"cannot write {path}: {exc.strerror}") from exc


def read_text(path: Path, hint: str) -> str:
    """The file's text, or `SetupError` with `hint` saying how to get it."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SetupError(f"{path} does not exist; {hint}") from exc
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc.strerror}") from exc
