"""Names of the daemon's parent group and of job groups; checked so that no
job id or parent can point outside the cgroup tree."""

from __future__ import annotations

import re
from pathlib import Path

from joblet.errors import InvalidArgument

JOB_PREFIX = "job-"
_SAFE = re.compile(r"[A-Za-z0-9_.@:-]+")


def job_dir_name(job_id: str) -> str:
    if not _SAFE.fullmatch(job_id) or job_id in (".", ".."):
        raise InvalidArgument(f"job id {job_id!r} cannot name a cgroup")
    return JOB_PREFIX + job_id


def job_id_of(dir_name: str) -> str | None:
    """The job id of a job group's directory name, None for other directories."""
    if dir_name.startswith(JOB_PREFIX) and len(dir_name) > len(JOB_PREFIX):
        return dir_name[len(JOB_PREFIX) :]
    return None


def parent_path(parent: str) -> Path:
    """The parent as a relative path of one or more checked components."""
    parts = [p for p in parent.split("/") if p]
    if not parts or any(not _SAFE.fullmatch(p) or p in (".", "..") for p in parts):
        raise InvalidArgument(f"cgroup parent {parent!r} must be a relative path of plain names")
    return Path(*parts)


def job_ids_under(parent_dir: Path) -> set[str]:
    if not parent_dir.is_dir():
        return set()
    return {
        job_id
        for entry in parent_dir.iterdir()
        if entry.is_dir() and (job_id := job_id_of(entry.name)) is not None
    }
