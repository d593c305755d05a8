"""What the daemon asks the launcher for: plain data, JSON-serialisable.

This is the seam between the job manager and the isolation layer. The daemon
prepares the job directory (workspace with uploads) and the cgroup with its
limits, then hands a `LaunchSpec` to the launcher, which builds the namespaces
and root filesystem, joins the cgroup, hardens the process and execs the
command. The launcher is a separate long-lived process (not in the daemon's
process group) so that jobs outlive a daemon crash.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class LaunchSpec:
    job_id: str
    argv: tuple[str, ...]  # argv[0] is resolved with the job's PATH inside the job root
    env: dict[str, str]  # exactly the job's environment; nothing is inherited
    hostname: str
    job_dir: str  # host directory owned by this job: DIR/jobs/<id>
    workspace: str  # host directory mounted read-write at /work
    log_path: str  # host file the launcher appends framed output records to
    cgroup_procs: tuple[str, ...]  # cgroup.procs files the job joins before exec
    allowed_mounts: tuple[str, ...]  # host paths bind-mounted read-only
    workdir: str = "/work"  # the command's working directory inside the job
    tmp_size_bytes: int = 256 * 1024 * 1024
    max_log_bytes: int = 4 * 1024 * 1024 * 1024
    uid: int = 0
    gid: int = 0
    extra_hosts: dict[str, str] = field(default_factory=dict)  # name -> address
    # (host path, name, read_only): mounted at /volumes/NAME inside the job.
    volume_mounts: tuple[tuple[str, str, bool], ...] = ()
    # How the job's network namespace is wired; empty = loopback only. The
    # keys are defined by joblet.network (mode, addresses, veth names, rates).
    network: dict[str, Any] = field(default_factory=dict)
    # RLIMIT_NOFILE's hard limit for the job (soft: the lower of it and
    # 1024); 0 = the launcher's own limits.
    max_open_files: int = 0
    # A FIFO on the host the job's fd 0 reads from; "" = /dev/null.
    stdin_path: str = ""
    # A runtime: its tree read-only at /opt/runtime, and (source inside the
    # tree, job path) pairs mounted read-only (joblet.isolation.runtime_root).
    runtime_tree: str = ""
    runtime_mounts: tuple[tuple[str, str], ...] = ()
    # A runtime build: sources read-only at /src, the staging dir read-write
    # at /opt/runtime, allowed host directories as overlays on a tmpfs of
    # build_scratch_bytes. Empty build_source: not a build.
    build_source: str = ""
    build_staging: str = ""
    build_scratch_bytes: int = 0
    # Host device nodes bound into the job's /dev: (host path, name), a GPU
    # job's GPUs and control devices. Its cgroup's device rules allow them.
    devices: tuple[tuple[str, str], ...] = ()
    # The host's /proc/driver/nvidia and the job's GPUs' bus ids: the job's
    # own /proc/driver/nvidia shows only them (isolation.driver_proc).
    driver_proc: str = ""
    gpu_bus_ids: tuple[str, ...] = ()
    # The driver's user-space files: (host real file, path under
    # /usr/local/nvidia), bound read-only (isolation.driver_files).
    driver_files: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The fields as they are, for a JSON encoder: no deep copy (asdict's
        costs more than the whole launch request's encoding)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, text: str) -> LaunchSpec:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LaunchSpec:
        """From decoded JSON (lists where the fields hold tuples)."""
        raw = dict(raw)
        for key in ("argv", "cgroup_procs", "allowed_mounts"):
            raw[key] = tuple(raw[key])
        raw["volume_mounts"] = tuple(tuple(m) for m in raw.get("volume_mounts", ()))
        raw["runtime_mounts"] = tuple(tuple(m) for m in raw.get("runtime_mounts", ()))
        raw["devices"] = tuple(tuple(d) for d in raw.get("devices", ()))
        raw["gpu_bus_ids"] = tuple(raw.get("gpu_bus_ids", ()))
        raw["driver_files"] = tuple(tuple(f) for f in raw.get("driver_files", ()))
        return cls(**raw)


@dataclass(frozen=True)
class JobExit:
    """How a job's init ended, as the launcher saw it through waitpid."""

    job_id: str
    exit_code: int  # the command's exit code, or 128 + signal
    signal: int  # 0 when it exited normally
    ended_at_ns: int
    lost: bool = False  # the launcher did not see the end (it was restarted)
    fenced: bool = False  # killed by the launcher's fence (see Launcher.set_fence)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JobExit:
        return cls(**json.loads(text))
