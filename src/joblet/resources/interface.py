"""One small interface over cgroups; v2, v1 and null backends implement it.

The daemon creates a job's cgroup and applies every limit *before* the job's
command runs: the launcher writes the job's pid into `procs_files()` and only
then execs, so there is no window in which the command runs unlimited.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from joblet.resources.device_rules import DeviceRule


@dataclass(frozen=True)
class Limits:
    """A job's limits; 0 means unlimited."""

    max_cpu_percent: int = 0  # 100 = one full core
    cpu_cores: str = ""  # cpuset list such as "0-1,3"; "" = all
    max_memory_bytes: int = 0
    max_io_bps: int = 0  # read and write, on each block device in `io_devices`
    max_pids: int = 0
    io_devices: tuple[str, ...] = ()  # "major:minor" of the devices to throttle
    # The devices the job may use (device_rules.job_rules); () = no device filter.
    devices: tuple[DeviceRule, ...] = ()


@dataclass(frozen=True)
class CgroupStats:
    """A raw reading of a job's cgroup; what a host cannot give stays 0."""

    cpu_usage_usec: int = 0
    cpu_user_usec: int = 0
    cpu_system_usec: int = 0
    cpu_nr_periods: int = 0
    cpu_nr_throttled: int = 0
    cpu_throttled_usec: int = 0
    memory_current: int = 0
    memory_max: int = 0
    memory_peak: int = 0
    oom_events: int = 0
    oom_kills: int = 0
    pids_current: int = 0
    pids_max: int = 0
    io_read_bytes: int = 0
    io_write_bytes: int = 0


class JobCgroup(Protocol):
    """The cgroup(s) of one job."""

    job_id: str

    def procs_files(self) -> tuple[Path, ...]:
        """Every cgroup.procs a process must be written to (one per v1 hierarchy)."""

    def pids(self) -> list[int]:
        """Host pids of every process in the job's cgroup tree."""

    def read_stats(self) -> CgroupStats: ...

    def oom_killed(self) -> bool:
        """True once the kernel's OOM killer has killed a process of this job."""

    def kill_all(self) -> None:
        """SIGKILL every process of the job, sub-cgroups and frozen ones included,
        until the tree is empty."""

    def remove(self) -> None:
        """Remove the job's cgroup tree (after kill_all)."""

    def remove_if_empty(self) -> bool:
        """Remove the job's groups if nothing is left in them, without reading
        them or waiting: True when they are gone. Otherwise kill_all and
        remove do the rest."""


class CgroupManager(Protocol):
    version: str  # "v2", "v1" or "none"

    @property
    def device_filter(self) -> str:
        """How `Limits.devices` is enforced: "v1" (devices controller), "bpf"
        (cgroup v2 device program), or "" when it is not."""

    def create(self, job_id: str, limits: Limits) -> JobCgroup:
        """Create the job's cgroup under the daemon's parent and apply `limits`.
        Raises IsolationError if a limit cannot be applied."""

    def open(self, job_id: str) -> JobCgroup | None:
        """The existing cgroup of `job_id` (after a daemon restart), if any."""

    def leftover_job_ids(self) -> list[str]:
        """Job cgroups that exist under the daemon's parent."""

    def remove_parent(self) -> None:
        """Remove the daemon's parent group, and any empty group left under it,
        in every hierarchy (a clean stop, teardown). Never kills: a group that
        still holds a process stays, and IsolationError says so."""
