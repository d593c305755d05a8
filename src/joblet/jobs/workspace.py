"""A job's directory on disk: where its log lives, whom its workspace belongs
to, and creating both together with the job's uploads."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from joblet.config.model import JobsConfig, RootLayout
from joblet.errors import ResourceExhausted
from joblet.jobs.model import JobSpec
from joblet.jobs.tree_removal import RemovalFailure, remove_tree
from joblet.jobs.uploads import write_uploads

LOG_FILE = "output.log"
# Room a job needs beyond its uploads: its directory, log and exit records,
# its state record, and the first of its output.
MIN_FREE_BYTES = 2 << 20
MIN_FREE_INODES = 16
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def room_problem(free_bytes: int, free_inodes: int, needed_bytes: int) -> str | None:
    """Why a file system with this much free cannot take a new job, or None."""
    if free_bytes < needed_bytes + MIN_FREE_BYTES:
        return (
            f"{free_bytes // 1024} KiB free, a new job needs "
            f"{(needed_bytes + MIN_FREE_BYTES) // 1024} KiB"
        )
    if free_inodes < MIN_FREE_INODES:
        return f"{free_inodes} inodes free, a new job needs {MIN_FREE_INODES}"
    return None


def check_room(layout: RootLayout, spec: JobSpec) -> None:
    """Refuse a job the disk under the jobs' directory has no room for."""
    stat = os.statvfs(layout.jobs)
    needed = sum(len(upload.content) for upload in spec.uploads)
    # f_favail is 0 on file systems without an inode limit that report none.
    inodes = stat.f_favail if stat.f_files else MIN_FREE_INODES
    problem = room_problem(stat.f_bavail * stat.f_frsize, inodes, needed)
    if problem is not None:
        raise ResourceExhausted(f"no room for a new job under {layout.jobs}: {problem}")


def log_path(layout: RootLayout, job_id: str) -> Path:
    return layout.job_dir(job_id) / LOG_FILE


def run_as(jobs: JobsConfig, spec: JobSpec) -> tuple[int, int]:
    """The (uid, gid) a job runs as: its own choice, else the node's default."""
    if spec.run_as is not None:
        return spec.run_as
    uid = jobs.run_as_uid or 0
    return uid, jobs.run_as_gid if jobs.run_as_gid is not None else uid


def prepare_job_dir(
    layout: RootLayout, jobs: JobsConfig, job_id: str, spec: JobSpec
) -> tuple[str, ...]:
    """Create the job's directory with its workspace and uploads; all or nothing."""
    job_dir = layout.job_dir(job_id)
    try:
        # 0700 all the way: what a job leaves in its workspace (a setuid
        # binary, a device node, its data) is out of other host users' reach.
        job_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        workspace = job_dir / "work"
        workspace.mkdir(mode=0o700)
        uid, gid = run_as(jobs, spec)
        owner = (uid, gid) if uid or gid else None
        if owner is not None:
            os.chown(workspace, uid, gid)
        names = write_uploads(workspace, spec.uploads, owner=owner)
        os.close(os.open(log_path(layout, job_id), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except BaseException as exc:
        shutil.rmtree(job_dir, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            raise ResourceExhausted(f"no room for job {job_id}'s files: {exc.strerror}") from exc
        raise
    return names


def remove_job_dir(layout: RootLayout, job_id: str) -> list[RemovalFailure]:
    """Remove the job's directory, whatever the job left in its workspace;
    what could not be removed ([] when everything went)."""
    return remove_tree(layout.job_dir(job_id))
