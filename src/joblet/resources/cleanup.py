"""Clean up job cgroups a previous daemon run left behind, and a daemon's own
groups when it goes (a clean stop with no job left, teardown)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joblet.resources.interface import CgroupManager

IsOwn = Callable[[str], bool]


@dataclass(frozen=True)
class Removal:
    removed: list[str]  # job groups killed and removed
    foreign: list[str]  # job groups left alone: not proven this root's


def own_jobs(jobs_dir: Path) -> IsOwn:
    """A job group is this root's when its job has a directory under the
    root's jobs/ (made before the group, kept until the job is deleted): a
    parent shared by mistake with another root never loses that root's jobs."""
    return lambda job_id: (jobs_dir / job_id).is_dir()


def cleanup_leftovers(manager: CgroupManager) -> list[str]:
    """kill_all and remove every job group under the daemon's parent; the ids."""
    return [job_id for job_id in manager.leftover_job_ids() if clear_job_group(manager, job_id)]


def clear_job_group(manager: CgroupManager, job_id: str) -> bool:
    """Kill whatever runs in the job's group and remove it, before the job
    runs again under its id (its group is made anew; one left would refuse
    that with EEXIST). False when it had none."""
    job = manager.open(job_id)
    if job is None:
        return False
    job.kill_all()
    job.remove()
    return True


def remove_own(manager: CgroupManager, is_own: IsOwn) -> Removal:
    """Kill and remove the job groups `is_own` accepts, then the daemon's parent
    in every hierarchy; a group of someone else keeps the parent, untouched."""
    removed: list[str] = []
    foreign: list[str] = []
    for job_id in manager.leftover_job_ids():
        if not is_own(job_id):
            foreign.append(job_id)
            continue
        if clear_job_group(manager, job_id):
            removed.append(job_id)
    if not foreign:
        manager.remove_parent()
    return Removal(removed, foreign)
