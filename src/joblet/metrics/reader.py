"""The I/O half of sampling: read a job's cgroup files and its processes'
/proc entries, and hand the texts to the pure builders in `snapshot`.

Reads go to the files directly (not through `JobCgroup.read_stats`, which has
only a few fields). A file that vanishes mid-read (the job just ended, a
process exited) counts as absent: the sample keeps 0 there.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from joblet.errors import IsolationError
from joblet.metrics.parsers import (
    NetCounters,
    parse_max_open_files,
    parse_net_dev,
    parse_proc_stat,
    state_counts,
)
from joblet.metrics.snapshot import CgroupReading, ProcessCounts, Snapshot, v1_reading, v2_reading
from joblet.resources._fs import read_small, walk_groups
from joblet.resources.interface import JobCgroup

V1_FILES: Mapping[str, tuple[str, ...]] = {
    "cpu": ("cpu.stat",),
    "cpuacct": ("cpuacct.usage", "cpuacct.stat"),
    "memory": (
        "memory.usage_in_bytes", "memory.limit_in_bytes", "memory.stat",
        "memory.oom_control", "memory.kmem.tcp.usage_in_bytes",
    ),
    "pids": ("pids.current", "pids.max", "pids.events"),
    "blkio": (
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_serviced_recursive",
    ),
}  # fmt: skip
V2_FILES = (
    "cpu.stat", "memory.current", "memory.max", "memory.stat", "memory.events",
    "io.stat", "pids.current", "pids.max", "pids.events",
    "cpu.pressure", "memory.pressure", "io.pressure",
)  # fmt: skip
# The limits: written at the job's start and never changed while it runs.
LIMIT_FILES = frozenset({"memory.limit_in_bytes", "memory.max", "pids.max"})
# A job's limits (and whether its init has a network namespace of its own)
# are read at its first sample, then at every SLOW_EVERY-th and at the last:
# with thousands of jobs the sampler is mostly open/read/close calls.
SLOW_EVERY = 12


def read_optional(path: str | Path) -> str | None:
    """The file's text, or None when it is gone or unreadable (a sample keeps 0)."""
    try:
        return read_small(path).decode("ascii", errors="replace")
    except OSError:
        return None


def read_files(paths: Iterable[tuple[str, str | Path]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, path in paths:
        text = read_optional(path)
        if text is not None:
            out[name] = text
    return out


def cgroup_path(cgroup: JobCgroup) -> str:
    """The job's cgroup directory (v1: its memory hierarchy's group), '' for null."""
    dirs = getattr(cgroup, "dirs", None)
    if isinstance(dirs, Mapping):
        return str(dirs.get("memory", next(iter(dirs.values()), "")))
    path = getattr(cgroup, "path", None)
    return str(path) if isinstance(path, Path) else ""


@dataclass(frozen=True)
class CgroupFiles:
    """The files a job's samples read, named once as plain strings: building
    ~20 Paths per sample cost more than reading the files."""

    version: str  # "v1", "v2", or "" (the null backend: nothing to read)
    files: tuple[tuple[str, str], ...] = ()
    pids_dir: str = ""  # the group whose cgroup.procs lists the job's processes

    @property
    def changing(self) -> tuple[tuple[str, str], ...]:
        return tuple(pair for pair in self.files if pair[0] not in LIMIT_FILES)

    @property
    def limits(self) -> tuple[tuple[str, str], ...]:
        return tuple(pair for pair in self.files if pair[0] in LIMIT_FILES)


@dataclass
class SlowReads:
    """A job's readings that only change with its limits, kept between
    samples: the limit files' texts, its soft open-files limit (changed only
    by the job's own setrlimit), whether its init has a network namespace of
    its own. `left`: samples until they are read again."""

    files: CgroupFiles
    skip: frozenset[str] = frozenset()  # files this job's samples need not read
    changing: tuple[tuple[str, str], ...] = ()
    texts: dict[str, str] = field(default_factory=dict)
    max_fds: int = 0
    own_netns: bool = False
    nested: bool = True  # groups below the job's: list them all (the slow way)
    left: int = 0

    def __post_init__(self) -> None:
        self.changing = tuple(pair for pair in self.files.changing if pair[0] not in self.skip)


def cgroup_files(cgroup: JobCgroup) -> CgroupFiles:
    """v1 (`.dirs`), v2 (`.path`) or nothing (the null backend: all zero)."""
    dirs = getattr(cgroup, "dirs", None)
    if isinstance(dirs, Mapping):
        pairs = tuple(
            (name, f"{dirs[ctl]}/{name}")
            for ctl, names in V1_FILES.items()
            if ctl in dirs
            for name in names
        )
        pids_dir = dirs.get("pids") or sorted(set(dirs.values()))[0]
        return CgroupFiles("v1", pairs, str(pids_dir))
    path = getattr(cgroup, "path", None)
    if isinstance(path, Path):
        pairs = tuple((name, f"{path}/{name}") for name in V2_FILES)
        return CgroupFiles("v2", pairs, str(path))
    return CgroupFiles("")


def read_cgroup(cgroup: JobCgroup | CgroupFiles) -> CgroupReading:
    files = cgroup if isinstance(cgroup, CgroupFiles) else cgroup_files(cgroup)
    if files.version == "v1":
        return v1_reading(read_files(files.files))
    if files.version == "v2":
        return v2_reading(read_files(files.files))
    return CgroupReading()


def read_processes(pids: Iterable[int], procfs: Path) -> ProcessCounts:
    states: list[str] = []
    threads = fds = 0
    for pid in pids:
        text = read_optional(f"{procfs}/{pid}/stat")
        if text is None:
            continue
        status = parse_proc_stat(text)
        states.append(status.state)
        threads += status.threads
        fds += _count_fds(f"{procfs}/{pid}/fd")
    return ProcessCounts(threads=threads, open_fds=fds, **state_counts(states))


def _count_fds(fd_dir: str) -> int:
    try:
        return len(os.listdir(fd_dir))
    except OSError:
        return 0


def read_network(init_pid: int, procfs: Path) -> dict[str, NetCounters]:
    """Counters of the job's own network namespace, read from the host through
    /proc/<pid>/net/dev. A job sharing the host's namespace gets none: those
    counters are the host's, not the job's."""
    if not has_own_netns(init_pid, procfs):
        return {}
    return parse_net_dev(read_optional(f"{procfs}/{init_pid}/net/dev") or "")


def has_own_netns(pid: int, procfs: Path) -> bool:
    """Whether `pid` is in another network namespace than this process."""
    try:
        return os.stat(f"{procfs}/{pid}/ns/net").st_ino != _own_netns(str(procfs))
    except OSError:
        return False


@functools.cache
def _own_netns(procfs: str) -> int:
    # The daemon never changes its network namespace: one stat per process.
    return os.stat(f"{procfs}/self/ns/net").st_ino


def read_snapshot(
    cgroup: JobCgroup, init_pid: int | None, procfs: Path, files: CgroupFiles | None = None
) -> Snapshot:
    """`files`: the cgroup's, named once (cgroup_files) by a caller that reads often."""
    reading = read_cgroup(files or cgroup)
    pids = _pids(cgroup)
    first = init_pid if init_pid else (pids[0] if pids else 0)
    procs = read_processes(pids, procfs)
    if first:
        limits = read_optional(f"{procfs}/{first}/limits") or ""
        procs = _with_max_fds(procs, parse_max_open_files(limits))
    net = read_network(first, procfs) if first else {}
    return Snapshot(time.time_ns(), time.monotonic_ns(), reading, net, procs)


def read_snapshot_kept(
    cgroup: JobCgroup, init_pid: int, procfs: Path, slow: SlowReads, *, full: bool = False
) -> Snapshot:
    """read_snapshot for a job whose init is known, reading its limits only
    when `slow` is due (or `full`: the final sample) and keeping them there."""
    files = slow.files
    if full or slow.left <= 0:
        slow.texts = read_files(files.limits)
        text = read_optional(f"{procfs}/{init_pid}/limits")
        if text is not None:  # gone: the job ended; keep what was read before
            slow.max_fds = parse_max_open_files(text)
        slow.own_netns = has_own_netns(init_pid, procfs)
        slow.nested = not files.pids_dir or len(walk_groups(Path(files.pids_dir))) > 1
        slow.left = SLOW_EVERY
    slow.left -= 1
    texts = read_files(slow.changing) | slow.texts
    if files.version == "v1":
        reading = v1_reading(texts)
    elif files.version == "v2":
        reading = v2_reading(texts)
    else:
        reading = CgroupReading()
    pids = _pids(cgroup) if slow.nested else _listed_pids(files.pids_dir)
    procs = _with_max_fds(read_processes(pids, procfs), slow.max_fds)
    net = {}
    if slow.own_netns:
        net = parse_net_dev(read_optional(f"{procfs}/{init_pid}/net/dev") or "")
    return Snapshot(time.time_ns(), time.monotonic_ns(), reading, net, procs)


def _listed_pids(group: str) -> list[int]:
    """The pids in `group`'s cgroup.procs (a group with no group below it)."""
    return sorted(int(pid) for pid in (read_optional(f"{group}/cgroup.procs") or "").split())


def _pids(cgroup: JobCgroup) -> list[int]:
    try:
        return cgroup.pids()
    except (IsolationError, OSError):  # the group can vanish as the job ends
        return []


def _with_max_fds(procs: ProcessCounts, max_fds: int) -> ProcessCounts:
    return replace(procs, max_fds=max_fds)
