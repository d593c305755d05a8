"""A job's directory on disk: where its log lives, whom its workspace belongs
to, and creating both together with the job's uploads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from joblet.config.model import JobsConfig, RootLayout
from joblet.jobs.model import JobSpec
from joblet.jobs.tree_removal import RemovalFailure, remove_tree
from joblet.jobs.uploads import write_uploads

LOG_FILE = "output.log"


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
        workspace = job_dir / "work"
        workspace.mkdir(parents=True, mode=0o755)
        uid, gid = run_as(jobs, spec)
        owner = (uid, gid) if uid or gid else None
        if owner is not None:
            os.chown(workspace, uid, gid)
        names = write_uploads(workspace, spec.uploads, owner=owner)
        log_path(layout, job_id).touch()
    except BaseException:
        shutil.rmtree(job_dir, ignore_errors=True)
        raise
    return names


def remove_job_dir(layout: RootLayout, job_id: str) -> list[RemovalFailure]:
    """Remove the job's directory, whatever the job left in its workspace;
    what could not be removed ([] when everything went)."""
    return remove_tree(layout.job_dir(job_id))
