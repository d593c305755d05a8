"""`roles.maxPriority`: the highest priority a caller's role may give a job
(RunJob, and every job of a RunWorkflow)."""

from __future__ import annotations

from joblet.config.model import DaemonConfig
from joblet.errors import PermissionDenied
from joblet.security.interceptor import current_caller


def check_priority_cap(config: DaemonConfig, priority: int, what: str = "priority") -> None:
    caller = current_caller.get(None)
    if caller is None:
        return
    cap = config.roles.max_priority.get(caller.role.value)
    if cap is not None and priority > cap:
        raise PermissionDenied(
            f"{what} {priority} is above what role {caller.role.value} may set "
            f"(roles.maxPriority: {cap})"
        )
