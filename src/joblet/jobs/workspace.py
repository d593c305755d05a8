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
from joblet.workspaces.store import WorkspaceStore, plain_store

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
    needed = sum(upload.byte_size for upload in spec.uploads)
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
    layout: RootLayout,
    jobs: JobsConfig,
    job_id: str,
    spec: JobSpec,
    store: WorkspaceStore | None = None,
) -> tuple[str, ...]:
    """Create the job's directory with its workspace and uploads; all or nothing."""
    store = store or plain_store(layout)
    total = sum(upload.byte_size for upload in spec.uploads)
    if store.quota_bytes and total > store.quota_bytes:
        raise ResourceExhausted(
            f"the uploads ({total} bytes) do not fit a workspace "
            f"(joblet.maxWorkspaceSize: {store.quota_bytes} bytes)"
        )
    job_dir = layout.job_dir(job_id)
    made_workspace = False
    try:
        # 0700 all the way: what a job leaves in its workspace (a setuid
        # binary, a device node, its data) is out of other host users' reach.
        job_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        workspace = store.create(job_id)
        made_workspace = True
        uid, gid = run_as(jobs, spec)
        owner = (uid, gid) if uid or gid else None
        if owner is not None:
            os.chown(workspace, uid, gid)
        names = write_uploads(workspace, spec.uploads, owner=owner)
        os.close(os.open(log_path(layout, job_id), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except BaseException as exc:
        if made_workspace:
            store.remove(job_id)
        shutil.rmtree(job_dir, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno == errno.EDQUOT:
            raise ResourceExhausted(
                f"job {job_id}'s uploads do not fit its workspace "
                f"(joblet.maxWorkspaceSize: {store.quota_bytes} bytes)"
            ) from exc
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            raise ResourceExhausted(f"no room for job {job_id}'s files: {exc.strerror}") from exc
        raise
    return names


def remove_job_dir(
    layout: RootLayout, job_id: str, store: WorkspaceStore | None = None
) -> list[RemovalFailure]:
    """Remove the job's directory and workspace, whatever the job left in it;
    what could not be removed ([] when everything went)."""
    left = (store or plain_store(layout)).remove(job_id)
    return left + remove_tree(layout.job_dir(job_id))
