"""Which host paths may be bind-mounted into jobs: pure checks, no I/O.

A job sees its allowed mounts read-only, but with CAP_DAC_OVERRIDE it reads
every file there whatever its mode, so a mount must hold nothing private:
no home directory (keys, tokens, shell history), no private keys, no
password hashes.
"""

from __future__ import annotations

import posixpath

# Never mounted into a job, nor any directory that holds one of them.
PRIVATE_PATHS: tuple[str, ...] = (
    "/root",
    "/home",
    "/etc/ssl/private",
    "/etc/shadow",
    "/etc/gshadow",
)


def _within(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def mount_problem(path: str) -> str | None:
    """Why `path` may not be an allowed mount, or None when it may."""
    if not path.startswith("/"):
        return f"{path!r} is not an absolute path"
    normal = posixpath.normpath(path)
    for private in PRIVATE_PATHS:
        if _within(normal, private):
            return f"{path} is under {private}, which jobs must not read"
        if _within(private, normal):
            return f"{path} holds {private}, which jobs must not read"
    return None
