"""The backend for hosts without usable cgroups: jobs run, limits are refused."""

from __future__ import annotations

from pathlib import Path

from joblet.errors import IsolationError
from joblet.resources.interface import CgroupStats, Limits
from joblet.resources.limits import has_limits


class NullJobCgroup:
    """A job without a cgroup: nothing to join, read, or remove.

    The job's processes are then only reachable through its pid namespace:
    killing the namespace's PID 1 kills the rest (pid_namespaces(7)).
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id

    def procs_files(self) -> tuple[Path, ...]:
        return ()

    def pids(self) -> list[int]:
        return []

    def read_stats(self) -> CgroupStats:
        return CgroupStats()

    def oom_killed(self) -> bool:
        return False

    def kill_all(self) -> None:
        return None

    def remove(self) -> None:
        return None

    def remove_if_empty(self) -> bool:
        return True


class NullCgroupManager:
    version = "none"
    device_filter = ""  # device rules need a cgroup: none apply here

    def __init__(self, reason: str = "no usable cgroup hierarchy") -> None:
        self.reason = reason

    def create(self, job_id: str, limits: Limits) -> NullJobCgroup:
        if has_limits(limits):
            raise IsolationError(f"resource limits are unavailable on this host ({self.reason})")
        return NullJobCgroup(job_id)

    def open(self, job_id: str) -> NullJobCgroup | None:
        return None

    def leftover_job_ids(self) -> list[str]:
        return []

    def remove_parent(self) -> None:
        return None
