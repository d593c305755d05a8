"""The parts of a job's root that runtimes add: pure planning, no I/O.

A job with a runtime sees its tree read-only at /opt/runtime and each of the
runtime's extra mounts read-only at its target. A mount point is made in the
job's own root tmpfs; one that lies under a host path bound read-only (say
/usr/lib/python3.11) is the host's own, or, where the host has none, comes
from a read-only overlay of a small skeleton tmpfs over the host's directory:
making it there would write the host's file system.

A runtime build sees every allowed host directory as an overlay: the host's
read-only directory below, a directory on a tmpfs of the build's own above.
That tmpfs lives in the build's mount namespace only (it is detached once the
overlays hold it), so whatever the build writes there is gone with it. The
overlays are mounted by the init while it is still host root, before it
enters the jobs' user namespace; with one, the lower layers are idmapped
binds, so the build's root owns what the host's root owns there and may
change it (in the upper layer). Its sources are bound read-only at /src and
its staging directory read-write at /opt/runtime, the only thing it keeps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from joblet.isolation import libc
from joblet.isolation.paths import UnsafePath, components

# rootfs imports this module only when it plans (no cycle at import time).
from joblet.isolation.rootfs import (
    RO_ATTRS,
    Chown,
    CopyFile,
    HostEntry,
    Kind,
    Mount,
    Overlay,
    Protect,
    Unmount,
    _Planner,
)

RUNTIME_DIR = "/opt/runtime"
SOURCE_DIR = "/src"
# Where an extra mount may not go: the job's own parts and the kernel's.
RESERVED_TARGETS = ("/", "/proc", "/sys", "/dev", "/work", "/tmp", "/volumes", RUNTIME_DIR)
SCRATCH = "/.joblet-scratch"  # the build's tmpfs, detached before the command runs
SKELETON = "/.joblet-skeleton"  # missing mount points' tmpfs, detached likewise
_OVERLAY_UNSAFE = frozenset(",:\\=")  # overlayfs option separators


@dataclass(frozen=True)
class RuntimeRoot:
    """A runtime as the planner sees it: host paths already resolved."""

    tree: str
    mounts: Sequence[tuple[str, str]] = ()  # (host source inside the tree, job target)
    # What each mount target is on the host (lstat), for targets under host binds.
    targets: Mapping[str, HostEntry] | None = None
    source_dirs: frozenset[str] = frozenset()  # the mount sources that are directories


@dataclass(frozen=True)
class BuildRoot:
    source: str  # host dir, read-only at /src
    staging: str  # host dir, read-write at /opt/runtime
    scratch_bytes: int  # size of the tmpfs holding the overlays' upper layers
    owner: int = 0  # host uid of the build's root (in a user namespace: its base id)


def _within(path: str, top: str) -> bool:
    return top in ("/", path) or path.startswith(top + "/")


def check_target(target: str) -> str:
    """`target` normalised; UnsafePath for a relative or reserved one."""
    if not target.startswith("/"):
        raise UnsafePath(f"runtime mount target {target!r} is not absolute")
    normal = "/" + "/".join(components(target))
    for reserved in RESERVED_TARGETS:
        if normal == reserved or (reserved != "/" and _within(normal, reserved)):
            raise UnsafePath(f"runtime mount target {target} lies on {reserved}")
    return normal


def host_bound_under(path: str, allowed: Mapping[str, HostEntry]) -> str | None:
    """The allowed host directory `path` lies in (itself included), if any."""
    for top, entry in allowed.items():
        if entry.kind is Kind.DIR and _within(path, top.rstrip("/") or "/"):
            return top
    return None


def mount_point(
    p: _Planner,
    path: str,
    is_dir: bool,
    inputs_allowed: Mapping[str, HostEntry],
    *,
    host: Mapping[str, HostEntry] | None = None,
    provided: frozenset[str] = frozenset(),
) -> str:
    """The target of a runtime mount under the planner's root, its mount point
    planned. Never through one of the root's symlinks (their targets are
    host binds); under a host bind only where the host has it already, or
    where a skeleton overlay provides it (`provided`, see _plan_skeletons)."""
    if p.under_link(path):
        raise UnsafePath(f"runtime mount target {path} lies under a symbolic link of the root")
    target = p.target(path)
    top = host_bound_under(path, inputs_allowed)
    if top is None:
        if is_dir:
            p.dirs(target)
        else:
            p.file(target)
        return target
    if path not in provided and not _is((host or {}).get(path), is_dir):
        what = "directory" if is_dir else "file"
        raise UnsafePath(
            f"runtime mount target {path} lies under the host's read-only {top} "
            f"and is no {what} there; it cannot be made without writing the host"
        )
    return target


def _is(entry: HostEntry | None, is_dir: bool) -> bool:
    return entry is not None and entry.kind is (Kind.DIR if is_dir else Kind.FILE)


def _existing_ancestor(path: str, top: str, host: Mapping[str, HostEntry]) -> str:
    """The nearest ancestor of `path` the host has as a directory (the host
    bind `top` at the furthest); UnsafePath where a file or link is in the way."""
    parts = components(path)
    for i in range(len(parts) - 1, -1, -1):
        ancestor = "/" + "/".join(parts[:i])
        entry = host.get(ancestor)
        if _within(top, ancestor) and ancestor != top.rstrip("/"):
            break
        if entry is None or entry.kind is Kind.MISSING:
            continue
        if entry.kind is not Kind.DIR:
            raise UnsafePath(f"runtime mount target {path}: {ancestor} is no directory on the host")
        return ancestor
    return top.rstrip("/") or "/"


def _plan_skeletons(
    p: _Planner, missing: Mapping[str, Sequence[tuple[str, bool]]], allowed: Mapping[str, HostEntry]
) -> frozenset[str]:
    """Mount points missing under a host bind, without writing the host: the
    nearest directory the host has (A) gets a read-only overlay of a small
    tmpfs "skeleton" holding just the missing path over A itself. The
    skeleton's tmpfs is detached once the overlays hold it. What A held
    stays visible; submounts under A (other allowed mounts) would be hidden,
    so such an A is refused."""
    skel = p.target(SKELETON)
    p.dirs(skel)
    p.ops.append(Mount("tmpfs", skel, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV,
                       "mode=0755,size=64k"))  # fmt: skip
    provided: set[str] = set()
    for i, ancestor in enumerate(sorted(missing)):
        nested = [a for a, e in allowed.items() if e.kind is not Kind.MISSING
                  and a.rstrip("/") != ancestor and _within(a, ancestor)]  # fmt: skip
        if nested:
            raise UnsafePath(f"runtime mount targets under {ancestor} would hide {nested[0]}")
        layer = f"{skel}/s{i}"
        p.dirs(layer)
        for path, is_dir in missing[ancestor]:
            inner = layer + path[len(ancestor.rstrip("/")) :]
            if is_dir:
                p.dirs(inner)
            else:
                p.file(inner)
            provided.add(path)
        target = _overlay_path(p.target(ancestor))
        p.ops.append(Overlay(target, lower=target, over=layer))
    p.ops.append(Unmount(skel))
    return frozenset(provided)


def plan_runtime(
    p: _Planner,
    runtime: RuntimeRoot,
    allowed: Mapping[str, HostEntry],
    idmapped: bool,
    *,
    extra_dirs: Sequence[str] = (),
    extra_host: Mapping[str, HostEntry] | None = None,
) -> frozenset[str]:
    """The tree at /opt/runtime, then each extra mount, all read-only.
    `extra_dirs` (`extra_host`: what the host has there) are mount points
    others plan later (a GPU job's driver directory): made in the
    same skeleton, as a second overlay over the same directory would hide
    the runtime's mounts. Returns the mount points the skeletons provide."""
    host = {**(extra_host or {}), **(runtime.targets or {})}
    binds = [(runtime.tree, RUNTIME_DIR, True)]
    binds += [(src, check_target(dst), src in runtime.source_dirs) for src, dst in runtime.mounts]
    missing: dict[str, list[tuple[str, bool]]] = {}
    for _, path, is_dir in [*binds, *(("", path, True) for path in extra_dirs)]:
        top = host_bound_under(path, allowed)
        if top is not None and not p.under_link(path) and not _is(host.get(path), is_dir):
            if host.get(path) not in (None, HostEntry(Kind.MISSING)):
                continue  # the wrong kind: refused below
            missing.setdefault(_existing_ancestor(path, top, host), []).append((path, is_dir))
    provided = _plan_skeletons(p, missing, allowed) if missing else frozenset()
    for source, path, is_dir in binds:
        target = mount_point(p, path, is_dir, allowed, host=host, provided=provided)
        p.ops.append(Mount(source, target, None, libc.MS_BIND | libc.MS_REC, idmapped=idmapped))
        p.ops.append(Protect(target, RO_ATTRS))
    return provided


def _overlay_path(path: str) -> str:
    if _OVERLAY_UNSAFE & set(path):
        raise UnsafePath(f"{path!r} cannot be an overlay layer (it holds , : = or \\)")
    return path


def plan_build(
    p: _Planner, build: BuildRoot, allowed: Mapping[str, HostEntry], idmapped: bool
) -> None:
    """Overlays over every allowed host directory, /src and /opt/runtime."""
    # The root tmpfs stays writable in a build (an install may write /etc):
    # sized like the scratch, and gone with the build's mount namespace.
    tmpfs_flags = libc.MS_NOSUID | libc.MS_NODEV
    p.ops.append(Mount(None, p.root, None, libc.MS_REMOUNT | tmpfs_flags,
                       f"mode=0755,size={build.scratch_bytes}"))  # fmt: skip
    if build.owner:
        # The root's own directories, so the build's root may add to / and /etc.
        p.ops.append(Chown(p.root, build.owner))
        if not p.under_link("/etc") and host_bound_under("/etc", allowed) is None:
            p.dirs(p.target("/etc"))
            p.ops.append(Chown(p.target("/etc"), build.owner))
    scratch = p.target(SCRATCH)
    p.dirs(scratch)
    p.ops.append(Mount("tmpfs", scratch, "tmpfs", tmpfs_flags,
                       f"mode=0700,size={build.scratch_bytes}"))  # fmt: skip
    layers: list[str] = []
    tops = sorted(path for path, e in allowed.items() if e.kind is Kind.DIR and components(path))
    for i, path in enumerate(tops):
        if p.under_link(path):
            continue
        target = _overlay_path(p.target(path))
        upper, work = f"{scratch}/u{i}", f"{scratch}/w{i}"
        p.dirs(upper)
        p.dirs(work)
        lower = target
        if idmapped:
            lower = f"{scratch}/l{i}"
            layers.append(lower)
            p.dirs(lower)
            p.ops.append(Mount(target, lower, None, libc.MS_BIND, idmapped=True))
        p.ops.append(Overlay(target, lower, upper, work))
    # The overlays hold their layers: the names go, so the build cannot reach
    # the scratch tmpfs but through them.
    p.ops += [Unmount(layer) for layer in layers]
    p.ops.append(Unmount(scratch))
    _plan_file_copies(p, allowed, build.owner)
    src = p.target(SOURCE_DIR)
    p.dirs(src)
    # Idmapped like the staging dir: the build's root reads the sources the
    # host's root owns whatever their mode.
    p.ops.append(Mount(build.source, src, None, libc.MS_BIND | libc.MS_REC, idmapped=idmapped))
    p.ops.append(Protect(src, RO_ATTRS))
    staging = mount_point(p, RUNTIME_DIR, True, allowed)
    p.ops.append(Mount(build.staging, staging, None, libc.MS_BIND, idmapped=idmapped))
    p.ops.append(Protect(staging, libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV))


def _plan_file_copies(p: _Planner, allowed: Mapping[str, HostEntry], owner: int) -> None:
    """The allowed host files (/etc/passwd, /etc/ld.so.cache) as writable
    copies in the build's root tmpfs instead of read-only binds: an install
    adds users and runs ldconfig. Jobs see these files anyway."""
    for path in sorted(allowed):
        if allowed[path].kind is not Kind.FILE or p.under_link(path):
            continue
        target = p.target(path)
        if target not in p.made or host_bound_under(path, allowed) is not None:
            continue  # not bound by the base plan (a generated /etc file)
        p.ops += [Unmount(target), CopyFile(path, target, owner)]


def with_ancestors(paths: Iterable[str]) -> list[str]:
    """Each absolute path and every ancestor of it (what to probe on the host)."""
    found: dict[str, None] = {}
    for path in paths:
        parts = components(path)
        for i in range(1, len(parts) + 1):
            found["/" + "/".join(parts[:i])] = None
    return list(found)


def resolve_source(tree: str, source: str) -> str:
    """A runtime mount's host source, checked to resolve inside the tree: a
    link in the tree must not bind a host file into the job."""
    real_tree = os.path.realpath(tree)
    path = source if source.startswith("/") else os.path.join(real_tree, source)
    real = os.path.realpath(path)
    if not _within(real, real_tree) or real == real_tree:
        raise UnsafePath(f"runtime mount source {source} leaves the runtime's tree")
    return real
