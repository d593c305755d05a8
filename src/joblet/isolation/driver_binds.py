"""A GPU job's /usr/local/nvidia: a small tmpfs of its own holding lib64/ and
bin/, each driver file a read-only bind of the host's, the whole read-only.

Where the job's root carries the host's /usr read-only and the host has no
/usr/local/nvidia, the mount point comes from a skeleton overlay (as for a
runtime's mount targets): making it would write the host's file system.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from joblet.isolation import libc, runtime_root
from joblet.isolation.paths import UnsafePath, components

# rootfs imports this module only when it plans (no cycle at import time).
from joblet.isolation.rootfs import RO_ATTRS, HostEntry, Kind, Mount, Protect, _Planner

JOB_DIR = "/usr/local/nvidia"
SUBDIRS = ("lib64", "bin")
_TMPFS = "mode=0755,size=64k"


@dataclass(frozen=True)
class DriverBinds:
    files: tuple[tuple[str, str], ...]  # (host real file, job path)
    # What /usr/local/nvidia and its ancestors are on the host (lstat).
    host: Mapping[str, HostEntry]


def check_files(files: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The (source, target) pairs, each target a plain name directly in
    /usr/local/nvidia/lib64 or bin; UnsafePath otherwise."""
    for source, target in files:
        parent, name = os.path.split(target)
        if parent not in tuple(f"{JOB_DIR}/{d}" for d in SUBDIRS):
            raise UnsafePath(f"driver file target {target} is not in {JOB_DIR}/lib64 or bin")
        if name in ("", ".", "..") or not source.startswith("/"):
            raise UnsafePath(f"driver file {source} -> {target} is not a plain file name")
    return tuple(files)


def existing_files(files: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Those whose host file is still a regular file (a driver upgrade may
    have removed one since the daemon started)."""
    return tuple((s, t) for s, t in files if os.path.isfile(s) and not os.path.islink(s))


def plan_driver_binds(
    p: _Planner,
    binds: DriverBinds,
    allowed: Mapping[str, HostEntry],
    provided: frozenset[str] = frozenset(),
) -> None:
    """The tmpfs and its binds; its mount point from a skeleton of its own
    unless a runtime's skeleton `provided` it (planned after the runtime's
    mounts, so no overlay of the runtime's hides it)."""
    files = check_files(binds.files)
    if not files:
        return
    if p.under_link(JOB_DIR):
        raise UnsafePath(f"{JOB_DIR} lies under a symbolic link of the job's root")
    host, dirs = binds.host, allowed
    top = runtime_root.host_bound_under(JOB_DIR, dirs)
    entry = host.get(JOB_DIR)
    missing = entry is None or entry.kind is not Kind.DIR
    if top is not None and missing and JOB_DIR not in provided:
        if entry is not None and entry.kind is not Kind.MISSING:
            raise UnsafePath(f"{JOB_DIR} is no directory on the host")
        ancestor = runtime_root._existing_ancestor(JOB_DIR, top, host)
        provided = runtime_root._plan_skeletons(p, {ancestor: [(JOB_DIR, True)]}, dirs)
    target = runtime_root.mount_point(p, JOB_DIR, True, dirs, host=host, provided=provided)
    p.ops.append(Mount("tmpfs", target, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, _TMPFS))
    # It and its ancestors exist now (host, skeleton or made): nothing more to make.
    parts = components(JOB_DIR)
    p.made.update(p.target("/".join(parts[:i])) for i in range(1, len(parts) + 1))
    for sub in SUBDIRS:
        p.dirs(f"{target}/{sub}")
    for source, job_path in files:
        inner = p.target(job_path)
        p.file(inner)
        p.ops.append(Mount(source, inner, None, libc.MS_BIND))
    # Read-only, nosuid, nodev, with the binds under it; nvidia-smi stays executable.
    p.ops.append(Protect(target, RO_ATTRS))
