"""Clean up job cgroups a previous daemon run left behind."""

from __future__ import annotations

from joblet.resources.interface import CgroupManager


def cleanup_leftovers(manager: CgroupManager) -> list[str]:
    """kill_all and remove every job group under the daemon's parent; the ids."""
    cleaned: list[str] = []
    for job_id in manager.leftover_job_ids():
        job = manager.open(job_id)
        if job is None:
            continue
        job.kill_all()
        job.remove()
        cleaned.append(job_id)
    return cleaned


def remove_everything(manager: CgroupManager) -> list[str]:
    """Kill and remove every job group, then the daemon's parent itself in
    every hierarchy (a clean stop with no job left, teardown); the job ids."""
    cleaned = cleanup_leftovers(manager)
    manager.remove_parent()
    return cleaned
