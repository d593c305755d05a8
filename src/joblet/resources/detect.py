"""Which cgroup version to use, decided once from /proc/self/mountinfo.

The parsing and the decision are pure; `detect_layout` and
`create_cgroup_manager` are the thin shell that reads the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from joblet.resources._fs import read_text
from joblet.resources.interface import CgroupManager

V2_REQUIRED = frozenset({"cpu", "memory", "io", "pids"})
V1_REQUIRED = frozenset({"cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "freezer"})
_KNOWN_V1 = V1_REQUIRED | {
    "devices", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"
}  # fmt: skip


@dataclass(frozen=True)
class CgroupMount:
    mount_point: Path
    fstype: str  # "cgroup" (v1) or "cgroup2"
    controllers: frozenset[str] = frozenset()  # v1: from the super options


@dataclass(frozen=True)
class CgroupLayout:
    version: str  # "v2", "v1" or "none"
    controllers: dict[str, Path] = field(default_factory=dict)  # controller -> mount point
    reason: str = ""


def _unescape(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (proc(5)).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup and cgroup2 mounts of a /proc/<pid>/mountinfo text."""
    mounts: list[CgroupMount] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        opts = frozenset(tail[2].split(",")) & _KNOWN_V1 if tail[0] == "cgroup" else frozenset()
        mounts.append(CgroupMount(Path(_unescape(fields[4])), tail[0], opts))
    return mounts


def find_v2_mount(mounts: list[CgroupMount], under: Path) -> Path | None:
    for mount in mounts:
        if mount.fstype == "cgroup2" and mount.mount_point.is_relative_to(under):
            return mount.mount_point
    return None


def choose_layout(mounts: list[CgroupMount], v2_controllers: str, under: Path) -> CgroupLayout:
    """Decide the version from the mounts at or below `under` and the v2 mount's
    cgroup.controllers text ("" when there is no v2 mount).

    A hybrid host (v1 hierarchies plus a cgroup2 mount holding few or no
    controllers) is v1: the controllers we need are bound to v1.
    """
    mounts = [m for m in mounts if m.mount_point.is_relative_to(under)]
    v2_mount = find_v2_mount(mounts, under)
    available = frozenset(v2_controllers.split())
    if v2_mount is not None and available >= V2_REQUIRED:
        return CgroupLayout("v2", {c: v2_mount for c in sorted(available)})
    v1: dict[str, Path] = {}
    for mount in mounts:
        for controller in mount.controllers:
            v1.setdefault(controller, mount.mount_point)
    missing = V1_REQUIRED - v1.keys()
    if v1 and not missing:
        return CgroupLayout("v1", v1)
    if v1:
        return CgroupLayout("none", v1, f"v1 controllers not mounted: {sorted(missing)}")
    if v2_mount is not None:
        lacking = sorted(V2_REQUIRED - available)
        return CgroupLayout("none", {}, f"cgroup2 lacks controllers {lacking}")
    return CgroupLayout("none", {}, f"no cgroup filesystem mounted under {under}")


@dataclass(frozen=True)
class CgroupVerdict:
    usable: bool  # False: the daemon must not start
    message: str  # the start log line (a warning when limits are off), or the refusal


def cgroup_verdict(layout: CgroupLayout, backend: str, mount_root: Path) -> CgroupVerdict:
    """Whether a daemon configured with `backend` may start on a host with `layout`.
    Jobs without limits are never a silent fallback: `none` has to be asked for."""
    if backend == "none":
        found = f"{layout.version} found" if layout.version != "none" else layout.reason
        return CgroupVerdict(
            True,
            f"cgroup.backend is none ({found}): jobs run without CPU, memory, I/O "
            "or process limits, and jobs asking for limits are refused",
        )
    if layout.version == "none":
        return CgroupVerdict(
            False,
            f"no usable cgroups under {mount_root}: {layout.reason}; "
            "set cgroup.backend: none to run jobs without resource limits",
        )
    return CgroupVerdict(True, f"cgroups: {layout.version} under {mount_root}")


def detect_layout(mount_root: Path, procfs: Path = Path("/proc")) -> CgroupLayout:
    mounts = parse_mountinfo(read_text(procfs / "self" / "mountinfo") or "")
    v2_mount = find_v2_mount(mounts, mount_root)
    controllers = "" if v2_mount is None else read_text(v2_mount / "cgroup.controllers") or ""
    return choose_layout(mounts, controllers, mount_root)


def create_cgroup_manager(
    mount_root: Path, parent: str, procfs: Path = Path("/proc"), backend: str = "auto"
) -> CgroupManager:
    """The manager for this host: v2, v1, or the null one that refuses limits
    (no usable hierarchy, or `backend` "none")."""
    from joblet.resources.null import NullCgroupManager
    from joblet.resources.v1 import V1CgroupManager
    from joblet.resources.v2 import V2CgroupManager

    if backend == "none":
        return NullCgroupManager("cgroup.backend is none")
    layout = detect_layout(mount_root, procfs)
    if layout.version == "v2":
        return V2CgroupManager(layout.controllers["cpu"], parent)
    if layout.version == "v1":
        return V1CgroupManager(layout.controllers, parent)
    return NullCgroupManager(layout.reason)
