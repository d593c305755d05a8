"""The shapes shared by the runtime store, the job manager and the isolation layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RuntimeMount:
    """An installed runtime as a job mounts it: its tree read-only at /opt/runtime."""

    name: str  # normalized name, e.g. "python-3.11"
    build_id: str  # which install of that name (installs are versioned)
    tree: str  # host directory mounted read-only at /opt/runtime
    # (host path inside tree, absolute job path), read-only
    extra_mounts: tuple[tuple[str, str], ...] = ()
    environment: tuple[tuple[str, str], ...] = ()  # the spec's env, ${VAR} unexpanded


@dataclass(frozen=True)
class BuildPlan:
    """A runtime build, run as a job of the launcher."""

    runtime_name: str
    source_dir: str  # host dir of sources, at /src in the build (read-only)
    staging_dir: str  # host dir, read-write at /opt/runtime in the build: the only thing kept
    script: str  # path relative to /src, run with /bin/sh
    timeout_s: float
    max_memory_mb: int
    max_cpu: int = 0
    network: str = "none"  # "none" = loopback only; otherwise a network name the config allows
    scratch_bytes: int = 1 << 30  # cap on the writable overlay layers


class RuntimeResolver(Protocol):
    # raises joblet.errors NotFound / FailedPrecondition; pins the build for the job
    def acquire(self, reference: str, job_id: str) -> RuntimeMount: ...

    # the job ended or was deleted; idempotent
    def release(self, job_id: str) -> None: ...

    # after a daemon restart: pin again the build a job recorded (RuntimeMount.build_id);
    # raises NotFound when that build is gone
    def reacquire(self, name: str, build_id: str, job_id: str) -> RuntimeMount: ...
