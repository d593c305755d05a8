"""Path logic of the job root: pure functions, no I/O of their own."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class UnsafePath(ValueError):
    """A path that would leave the directory it must stay in."""


def components(path: str) -> list[str]:
    """The components of an absolute or relative path, refusing `..`."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"path must not contain '..': {path!r}")
    if "\0" in path:
        raise UnsafePath("path contains a NUL byte")
    return parts


def join_under(root: str, path: str) -> str:
    """`root` + `path` as a normalised path that is lexically inside `root`."""
    parts = components(path)
    return posixpath.join(root, *parts) if parts else root


def resolve_command(
    name: str, path_env: str | None, is_executable: Callable[[str], bool]
) -> str | None:
    """Look `name` up like execvp(3): a name with a slash is taken as is,
    otherwise each PATH entry is tried in order. None when nothing matches."""
    if not name:
        return None
    if "/" in name:
        return name if is_executable(name) else None
    for directory in (path_env if path_env is not None else DEFAULT_PATH).split(":"):
        candidate = posixpath.join(directory or ".", name)
        if is_executable(candidate):
            return candidate
    return None
