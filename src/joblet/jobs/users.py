"""Which users a job may run as on this node: a pure check at submission.

Jobs run as real host ids (no user namespace), and root keeps its reduced
capability set, so `rnx run --user root` is host root in all but name.
`joblet.allowedUsers` pins the users an operator accepts; with
`joblet.runAsUser` set and no list, only that user is accepted.
"""

from __future__ import annotations

from joblet.config.model import JobsConfig
from joblet.errors import PermissionDenied


def allowed_run_as(jobs: JobsConfig) -> frozenset[tuple[int, int]] | None:
    """The (uid, gid) pairs a job may run as; None when any is accepted."""
    if jobs.allowed_users is not None:
        return frozenset(jobs.allowed_users)
    if jobs.run_as_uid is None:
        return None
    gid = jobs.run_as_gid if jobs.run_as_gid is not None else jobs.run_as_uid
    return frozenset({(jobs.run_as_uid, gid)})


def check_run_as(jobs: JobsConfig, run_as: tuple[int, int]) -> None:
    """PermissionDenied when this node does not accept jobs running as `run_as`."""
    allowed = allowed_run_as(jobs)
    if allowed is None or run_as in allowed:
        return
    accepted = ", ".join(f"{uid}:{gid}" for uid, gid in sorted(allowed)) or "none"
    raise PermissionDenied(
        f"running as {run_as[0]}:{run_as[1]} is not allowed on this node "
        f"(joblet.allowedUsers: {accepted})"
    )
