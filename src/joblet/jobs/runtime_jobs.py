"""Jobs and runtimes: resolving a job's runtime, and a runtime build as a job.

Pure decisions live here (the build's job spec, whether the allowed mounts
keep the daemon's own files out of a build); the manager does the rest.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Sequence

from joblet.config.model import DaemonConfig
from joblet.errors import FailedPrecondition, InvalidArgument, JobletError, NotFound
from joblet.isolation.paths import UnsafePath, components
from joblet.jobs.model import JobSpec
from joblet.runtimes.seams import BuildPlan, RuntimeMount, RuntimeResolver

log = logging.getLogger(__name__)

BUILD_NAME_PREFIX = "runtime-build:"
BUILD_HOSTNAME = "runtime-build"


def acquire(resolver: RuntimeResolver | None, spec: JobSpec, job_id: str) -> RuntimeMount | None:
    """The job's runtime, pinned for it; None for a job without one.
    NotFound when there is no such runtime (or no runtimes at all here)."""
    if not spec.runtime:
        return None
    if resolver is None:
        raise NotFound(f"runtime {spec.runtime!r} is not installed on this node")
    return resolver.acquire(spec.runtime, job_id)


def reacquire(
    resolver: RuntimeResolver | None, name: str, build_id: str, job_id: str
) -> RuntimeMount | None:
    """After a restart: the build the job recorded, pinned again; None (logged)
    when it cannot be, so that the job fails to start instead of running on
    another build."""
    if resolver is None:
        log.warning("job %s uses runtime %s, but this node has no runtimes", job_id, name)
        return None
    try:
        return resolver.reacquire(name, build_id, job_id)
    except JobletError as exc:
        log.warning("job %s: its runtime %s (build %s): %s", job_id, name, build_id, exc)
        return None


def release(resolver: RuntimeResolver | None, job_id: str) -> None:
    if resolver is None:
        return
    try:
        resolver.release(job_id)
    except Exception:  # a store's trouble must not keep the job's other resources
        log.exception("releasing the runtime of job %s", job_id)


def build_spec(plan: BuildPlan) -> JobSpec:
    """The job a build runs as: `/bin/sh /src/SCRIPT`, named after the runtime."""
    try:
        parts = components(plan.script)
    except UnsafePath as exc:
        raise InvalidArgument(f"build script {plan.script!r}: {exc}") from exc
    if not parts or plan.script.startswith("/"):
        raise InvalidArgument(f"build script {plan.script!r} must be a path relative to /src")
    if plan.network == "host":
        raise InvalidArgument("a build never runs on the host's network")
    if plan.timeout_s <= 0:
        raise InvalidArgument("a build needs a timeout")
    if plan.scratch_bytes <= 0:
        raise InvalidArgument("a build needs room for its scratch layers")
    return JobSpec(
        command="/bin/sh",
        args=(posixpath.join("/src", *parts),),
        name=BUILD_NAME_PREFIX + plan.runtime_name,
        max_cpu=plan.max_cpu,
        max_memory_mb=plan.max_memory_mb,
        network=plan.network,
        run_as=(0, 0),  # the sandbox's root: an install writes /usr and /etc there
    )


def is_build(spec: JobSpec) -> bool:
    return spec.name.startswith(BUILD_NAME_PREFIX)


def _within(path: str, top: str) -> bool:
    top = top.rstrip("/") or "/"
    return top in ("/", path) or path.startswith(top + "/")


def private_exposure(allowed: Sequence[str], private: Sequence[str]) -> list[str]:
    """The allowed mounts that are, hold or lie in one of `private` (the
    daemon's root, its config and keys): a build must see none of them."""
    found = []
    for mount in allowed:
        normal = posixpath.normpath(mount)
        if any(_within(normal, p) or _within(p, normal) for p in private):
            found.append(mount)
    return found


def check_build_isolation(config: DaemonConfig) -> None:
    """FailedPrecondition when a build would see the daemon's own files."""
    layout = config.layout
    private = [str(layout.root.resolve()), str(layout.root), str(layout.config), "/run/joblet"]
    exposed = private_exposure(config.filesystem.allowed_mounts, private)
    if exposed:
        raise FailedPrecondition(
            "runtime builds are refused: filesystem.allowedMounts would show them the "
            f"daemon's root or keys ({', '.join(exposed)})"
        )
