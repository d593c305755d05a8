"""Kernel limits every job on the host shares, checked before a job is taken.

Process ids run out host-wide (kernel.pid_max, kernel.threads-max), and no
daemon can raise them for others; a job started without them fails inside
the launcher's clone or, worse, half-starts (its init cloned, its command
not). RunJob refuses instead, with RESOURCE_EXHAUSTED naming the limit,
while fewer than `joblet.minFreePids` ids are free. The open-files limit is
the daemon's own: its soft value is raised to the hard one at start (each
log follower holds the log file open).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

from joblet.errors import ResourceExhausted

DEFAULT_MIN_FREE_PIDS = 256


@dataclass(frozen=True)
class PidLimits:
    pid_max: int
    threads_max: int

    @property
    def ceiling(self) -> int:
        """Tasks the host can hold: every thread takes an id of its own."""
        return min(self.pid_max, self.threads_max)


def read_pid_limits(procfs: Path = Path("/proc")) -> PidLimits:
    sysctl = procfs / "sys" / "kernel"
    return PidLimits(
        int((sysctl / "pid_max").read_text()),
        int((sysctl / "threads-max").read_text()),
    )


# /proc/loadavg kept open: every RunJob reads it, and one pread costs a tenth
# of an open, a text read and a close (5 against 48 us).
_loadavg_fds: dict[Path, int] = {}


def tasks_in_use(procfs: Path = Path("/proc")) -> int:
    """Threads on the host now: /proc/loadavg's "running/total" field."""
    fd = _loadavg_fds.get(procfs)
    if fd is None:
        fd = _loadavg_fds[procfs] = os.open(procfs / "loadavg", os.O_RDONLY | os.O_CLOEXEC)
    fields = os.pread(fd, 256, 0).split()
    return int(fields[3].partition(b"/")[2])


def pid_problem(in_use: int, limits: PidLimits, min_free: int) -> str | None:
    """Why a new job cannot have the ids it needs, or None (pure)."""
    free = limits.ceiling - in_use
    if min_free <= 0 or free >= min_free:
        return None
    name = "kernel.pid_max" if limits.pid_max <= limits.threads_max else "kernel.threads-max"
    return (
        f"the host has {max(free, 0)} process ids free ({name} {limits.ceiling}, "
        f"{in_use} in use); a new job needs {min_free} (joblet.minFreePids)"
    )


def check_pids(limits: PidLimits, min_free: int, procfs: Path = Path("/proc")) -> None:
    problem = pid_problem(tasks_in_use(procfs), limits, min_free)
    if problem is not None:
        raise ResourceExhausted(problem)


def raise_open_files_limit() -> str | None:
    """Soft RLIMIT_NOFILE up to the hard one; what was done, for the log, or None."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return None
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return f"open files limit raised from {soft} to {hard} (one per followed log)"
