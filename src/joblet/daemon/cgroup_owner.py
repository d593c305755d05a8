"""The daemon's claim on its cgroup parent, and which leftover job groups are its own."""

from __future__ import annotations

from pathlib import Path

from joblet.config.model import DaemonConfig
from joblet.resources.detect import create_cgroup_manager
from joblet.resources.ownership import DEFAULT_LOCK_DIR, ParentClaim, claim_parent


def claim_cgroup_parent(config: DaemonConfig, lock_dir: Path = DEFAULT_LOCK_DIR) -> ParentClaim:
    """Own `cgroup.parent` for `joblet.root`, or raise ParentOwnedError naming its owner."""
    cgroups = create_cgroup_manager(
        config.cgroup.mount_root, config.cgroup.parent, backend=config.cgroup.backend
    )
    return claim_parent(
        config.cgroup.parent, config.layout.root, cgroups.leftover_job_ids, lock_dir
    )


def proven_own(claim: ParentClaim, jobs_dir: Path, job_id: str) -> bool:
    """A job group is this root's when the parent's previous owner was this root and
    the job has its directory under this root (made before its group, kept until
    the job is deleted). Anything else may be another daemon's: left alone."""
    return claim.owns_leftovers() and (jobs_dir / job_id).is_dir()
