"""What one daemon holds on the host, counted from /proc, /sys and its root:
the soak benchmark and its tests record these every so many jobs and check
they stay flat and return to their idle values.

Every count is of this daemon's own things (its processes, the cgroups
under its parent, mounts and files under its root, the loop devices backed
by its files, the veths and nftables set elements of the network namespace
it runs in), so other work on a shared host does not move them.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Runs a command in the daemon's network namespace and returns its stdout.
RunIn = Callable[..., str]


@dataclass(frozen=True)
class Watched:
    """One daemon: its pid, root, cgroup parent and a way into its netns."""

    pid: int
    root: Path
    cgroup_parent: str
    run_in_netns: RunIn
    cgroup_root: Path = Path("/sys/fs/cgroup")
    procfs: Path = Path("/proc")
    # Under the root but not the daemon's to bound: persist's histories
    # (ROOT/logs, ROOT/metrics) keep collected jobs until persist's own
    # retention drops them, by design.
    skip_dirs: tuple[str, ...] = ("persist", "logs", "metrics")


def counts(watched: Watched) -> dict[str, int]:
    """Every count, by name (RSS in KiB)."""
    out: dict[str, int] = {}
    for name, pid in processes(watched).items():
        out[f"{name} rss KiB"] = rss_kib(watched.procfs, pid)
        out[f"{name} fds"] = fd_count(watched.procfs, pid)
    out["inotify watches"] = inotify_watches(watched.procfs, watched.pid)
    out["cgroups"] = cgroup_count(watched.cgroup_root, watched.cgroup_parent)
    out["mounts"] = mounts_under(watched.procfs, watched.root)
    out["job netns"] = job_netns(watched)
    out["veths"] = (
        len(watched.run_in_netns("ip", "-o", "link", "show", "type", "veth").split("\n")) - 1
    )
    out["nft set elements"] = nft_set_elements(watched.run_in_netns("nft", "-j", "list", "sets"))
    out["loop devices"] = loop_devices(watched.root)
    out["files under root"] = file_count(watched.root, watched.skip_dirs)
    return out


# Counts of a job's own things: 0 between jobs once the last one is torn down.
PER_JOB = ("cgroups", "job netns", "veths", "nft set elements")


def quiet_counts(watched: Watched, timeout_s: float = 5.0) -> dict[str, int]:
    """`counts` once the jobs that just ended are torn down (a job's status is
    final a moment before its cgroup and veth are gone), or after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = counts(watched)
        if not any(now[name] for name in PER_JOB) or time.monotonic() > deadline:
            return now
        time.sleep(0.1)


def processes(watched: Watched) -> dict[str, int]:
    """The daemon, its helpers (its children, by role) and the launcher."""
    found = {"daemon": watched.pid}
    for child in children(watched.procfs, watched.pid):
        role = helper_role(watched.procfs, child)
        if role:
            found[role] = child
    pidfile = watched.root / "run" / "launcher" / "launcher.pid"
    with contextlib.suppress(OSError, ValueError):
        found["launcher"] = int(pidfile.read_text().strip())
    return found


def children(procfs: Path, pid: int) -> list[int]:
    try:
        text = (procfs / str(pid) / "task" / str(pid) / "children").read_text()
    except OSError:
        return []
    return [int(word) for word in text.split()]


def helper_role(procfs: Path, pid: int) -> str:
    """ "state" or "persist" for `joblet.daemon.main state|persist`, else ""."""
    try:
        argv = (procfs / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    for role in (b"state", b"persist"):
        if role in argv:
            return role.decode()
    return ""


def rss_kib(procfs: Path, pid: int) -> int:
    try:
        for line in (procfs / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(procfs: Path, pid: int) -> int:
    try:
        return len(os.listdir(procfs / str(pid) / "fd"))
    except OSError:
        return 0


def inotify_watches(procfs: Path, pid: int) -> int:
    total = 0
    fdinfo = procfs / str(pid) / "fdinfo"
    try:
        entries = os.listdir(fdinfo)
    except OSError:
        return 0
    for entry in entries:
        try:
            text = (fdinfo / entry).read_text()
        except OSError:
            continue
        total += text.count("inotify wd:")
    return total


def cgroup_count(cgroup_root: Path, parent: str) -> int:
    """Groups below the parent, summed over every hierarchy."""
    total = 0
    for hierarchy in cgroup_root.iterdir():
        top = hierarchy / parent
        if top.is_dir() and not top.is_symlink():
            total += sum(len(dirs) for _, dirs, _ in os.walk(top))
    return total


def mounts_under(procfs: Path, root: Path) -> int:
    prefix = f"{root}/"
    lines = (procfs / "self" / "mountinfo").read_text().splitlines()
    # Field 5 is the mount point.
    return sum(1 for line in lines if [*line.split(), "", "", "", "", ""][4].startswith(prefix))


def job_netns(watched: Watched) -> int:
    """Distinct network namespaces of the processes in the daemon's job cgroups."""
    seen: set[int] = set()
    for pid in cgroup_pids(watched.cgroup_root, watched.cgroup_parent):
        try:
            seen.add(os.stat(watched.procfs / str(pid) / "ns" / "net").st_ino)
        except OSError:
            continue
    return len(seen)


def cgroup_pids(cgroup_root: Path, parent: str) -> set[int]:
    pids: set[int] = set()
    for hierarchy in cgroup_root.iterdir():
        top = hierarchy / parent
        if not top.is_dir() or top.is_symlink():
            continue
        for dirpath, _, files in os.walk(top):
            if "cgroup.procs" in files:
                with open(os.path.join(dirpath, "cgroup.procs")) as procs:
                    pids.update(int(word) for word in procs.read().split())
        break  # every process is in every hierarchy: one is enough
    return pids


def nft_set_elements(listing: str) -> int:
    """Elements of every set in `nft -j list sets` output (pure)."""
    if not listing.strip():
        return 0
    total = 0
    for item in json.loads(listing).get("nftables", []):
        found = item.get("set")
        if isinstance(found, dict):
            total += len(found.get("elem", []))
    return total


def loop_devices(root: Path, sysfs: Path = Path("/sys")) -> int:
    """Loop devices whose backing file is under `root`."""
    prefix = f"{root}/"
    total = 0
    for backing in (sysfs / "block").glob("loop*/loop/backing_file"):
        try:
            if backing.read_text().strip().startswith(prefix):
                total += 1
        except OSError:
            continue
    return total


def file_count(root: Path, skip_dirs: tuple[str, ...] = ()) -> int:
    return sum(len(files) for _, files in _walk(root, skip_dirs))


def _walk(root: Path, skip_dirs: tuple[str, ...]) -> Iterator[tuple[str, list[str]]]:
    for dirpath, dirs, files in os.walk(root):
        if dirpath == str(root):
            dirs[:] = [d for d in dirs if d not in skip_dirs]
        # A job's mounted workspace or volume is its own file system: not
        # descended (mounts are counted apart).
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(dirpath, d))]
        yield dirpath, files


def flat(series: list[dict[str, int]], start: int, tolerance: float = 0.10) -> list[str]:
    """Counts whose last value is over `tolerance` above the value at index
    `start` (after warm-up), one line each (pure). A count of a few units may
    move by 2, a process's fds by FDS_SLACK (the launcher's spare init holds
    pipes only while it exists)."""
    if len(series) <= start:
        return []
    base, last = series[start], series[-1]
    return [
        f"{name}: {base[name]} -> {last[name]}"
        for name in base
        if name in last
        and last[name] > max(base[name] * (1 + tolerance), base[name] + _slack(name))
    ]


FDS_SLACK = 6


def _slack(name: str) -> int:
    return FDS_SLACK if name.endswith(" fds") else 2


def back_to_idle(idle: dict[str, int], end: dict[str, int], rss_slack: float = 0.25) -> list[str]:
    """Counts above their idle value at the end, one line each (pure).
    RSS and fds of long-lived processes may keep some warm-up (caches,
    connections): they get `rss_slack`; everything else must be back exactly."""
    problems = []
    for name, before in idle.items():
        after = end.get(name, 0)
        slack = 0.0
        if name.endswith("rss KiB"):
            slack = before * rss_slack
        elif name.endswith(" fds"):
            slack = FDS_SLACK
        if after > before + slack:
            problems.append(f"{name}: idle {before}, end {after}")
    return problems
