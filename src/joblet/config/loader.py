"""Read joblet-config.yml into a `DaemonConfig`, failing once with a clear message.

Reading the file (`read_config_file`, for the daemon and for each helper)
refuses every key no section knows, all of them in one message.

The file's shape (camelCase keys, like the reference's):

    server:   {address: 0.0.0.0, port: 50051, nodeId: ""}
    joblet:   {root: /opt/joblet, maxConcurrentJobs: 0, jobTimeout: "0s",
               stopGracePeriod: "5s", maxUploadSize: "256MB", maxLogSize: "4GB",
               runAsUser: null, runAsGroup: null, launcherIdleExit: "60s",
               userNamespace: auto, stopJobsOnShutdown: false}
    security: {serverCert: PEM, serverKey: PEM, caCert: PEM}
    filesystem: {allowedMounts: [...], tmpSize: "256MB"}
    cgroup:   {mountRoot: /sys/fs/cgroup, parent: joblet, backend: auto,
               defaults: {maxCpu: 0, maxMemory: 0, maxIobps: 0, maxPids: 1024}}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from joblet.cluster import config as cluster_config
from joblet.config.keys import Schema, unknown_keys
from joblet.config.model import (
    CGROUP_BACKENDS,
    CgroupConfig,
    DaemonConfig,
    FilesystemConfig,
    JobRetention,
    JobsConfig,
    LimitDefaults,
    RolesConfig,
    RootLayout,
    SecurityConfig,
    ServerConfig,
)
from joblet.config.mounts import mount_problem
from joblet.config.units import parse_duration_s, parse_size_bytes
from joblet.errors import ConfigError, InvalidArgument
from joblet.gpu import config as gpu_config
from joblet.jobs.validation import check_user
from joblet.metrics import config as metrics_config
from joblet.metrics.config import parse_metrics_config
from joblet.network import config as network_config
from joblet.network.config import parse_network_config
from joblet.persist import config as persist_config
from joblet.runtimes import config as runtime_config
from joblet.security import audit_config
from joblet.security.roles import CLIENT_ROLES
from joblet.state import config as state_config
from joblet.ui import config as ui_config
from joblet.volumes import config as volumes_config

# Every section of the file and its keys; the features' own sections come
# from the modules that read them.
FILE_KEYS: Schema = {
    "server": dict.fromkeys(("address", "port", "nodeId")),
    "joblet": dict.fromkeys(
        (
            "root",
            "maxConcurrentJobs",
            "jobTimeout",
            "stopGracePeriod",
            "maxUploadSize",
            "maxLogSize",
            "runAsUser",
            "runAsGroup",
            "allowedUsers",
            "maxOpenFiles",
            "launcherIdleExit",
            "userNamespace",
            "maxWorkspaceSize",
            "uniqueJobNames",
            "stopJobsOnShutdown",
            "priorityAging",
            "preemption",
            "maxRequeues",
            "minFreePids",
        )
    )
    | {"jobRetention": dict.fromkeys(("maxAge", "maxJobs", "interval"))},
    "security": dict.fromkeys(("serverCert", "serverKey", "caCert")),
    "filesystem": dict.fromkeys(("allowedMounts", "tmpSize")),
    "cgroup": {
        "mountRoot": None,
        "parent": None,
        "backend": None,
        "defaults": dict.fromkeys(("maxCpu", "maxMemory", "maxIobps", "maxPids")),
    },
    "persist": persist_config.KEYS,
    "state": state_config.KEYS,
    "metrics": metrics_config.KEYS,
    "network": network_config.KEYS,
    "volumes": volumes_config.KEYS,
    "audit": audit_config.KEYS,
    "gpu": gpu_config.KEYS,
    "runtime": runtime_config.KEYS,
    "roles": {"maxPriority": dict.fromkeys(role.value for role in CLIENT_ROLES)},
    "cluster": cluster_config.KEYS,
    "ui": ui_config.KEYS,
}


def read_config_file(path: Path) -> Mapping[str, Any]:
    """The whole YAML file as a mapping; ConfigError naming the file otherwise.
    Every part (daemon, persist, state, volumes) reads its section from this."""
    raw = read_yaml_mapping(path)
    problems = key_problems(raw, path)
    if problems:
        raise ConfigError("\n".join([f"config {path} has unknown keys:", *problems]))
    return raw


def read_yaml_mapping(path: Path) -> Mapping[str, Any]:
    """The file as a mapping, its keys unchecked; ConfigError naming the file."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text: {exc.reason}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config {path} must be a mapping")
    return raw


def key_problems(raw: Mapping[str, Any], path: Path) -> list[str]:
    """One line per unknown key of the file, naming the file and the key."""
    return [f"{path}: {line}" for line in unknown_keys(raw, FILE_KEYS)]


def load_daemon_config(path: Path) -> DaemonConfig:
    raw = read_config_file(path)
    try:
        return parse_daemon_config(raw)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"config {path}: {exc}") from exc


def _section(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"section {name!r} must be a mapping")
    return value


def parse_daemon_config(raw: Mapping[str, Any]) -> DaemonConfig:
    server = _section(raw, "server")
    joblet = _section(raw, "joblet")
    security = _section(raw, "security")
    filesystem = _section(raw, "filesystem")
    cgroup = _section(raw, "cgroup")
    for key in ("serverCert", "serverKey", "caCert"):
        if not security.get(key):
            raise ValueError(f"security.{key} is missing (run `joblet setup`)")
    root = Path(joblet.get("root", "/opt/joblet"))
    return DaemonConfig(
        layout=RootLayout(root),
        security=SecurityConfig(
            server_cert=security["serverCert"],
            server_key=security["serverKey"],
            ca_cert=security["caCert"],
        ),
        server=_server(server),
        jobs=_jobs(joblet),
        filesystem=_filesystem(filesystem),
        cgroup=_cgroup(cgroup),
        metrics=parse_metrics_config(_section(raw, "metrics")),
        network=parse_network_config(_section(raw, "network")),
        audit=audit_config.parse_audit_config(_section(raw, "audit")),
        gpu=gpu_config.parse_gpu_config(_section(raw, "gpu")),
        roles=_roles(_section(raw, "roles")),
        ui=ui_config.parse_ui_config(_section(raw, "ui"), root),
    )


def _server(raw: Mapping[str, Any]) -> ServerConfig:
    port = int(raw.get("port", 50051))
    if not 0 <= port <= 65535:
        raise ValueError(f"server.port {port} is out of range")
    return ServerConfig(
        address=str(raw.get("address", "0.0.0.0")),
        port=port,
        node_id=str(raw.get("nodeId", "") or ""),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _jobs(raw: Mapping[str, Any]) -> JobsConfig:
    defaults = JobsConfig()
    max_jobs = int(raw.get("maxConcurrentJobs", 0))
    if max_jobs < 0:
        raise ValueError("joblet.maxConcurrentJobs must be >= 0")
    return JobsConfig(
        max_concurrent_jobs=max_jobs,
        job_timeout_s=parse_duration_s(raw.get("jobTimeout", 0)),
        stop_grace_s=parse_duration_s(raw.get("stopGracePeriod", defaults.stop_grace_s)),
        max_upload_bytes=parse_size_bytes(raw.get("maxUploadSize", defaults.max_upload_bytes)),
        max_log_bytes=parse_size_bytes(raw.get("maxLogSize", defaults.max_log_bytes)),
        run_as_uid=_optional_int(raw.get("runAsUser")),
        run_as_gid=_optional_int(raw.get("runAsGroup")),
        allowed_users=_allowed_users(raw.get("allowedUsers")),
        max_open_files=_max_open_files(raw.get("maxOpenFiles", defaults.max_open_files)),
        launcher_idle_exit_s=parse_duration_s(
            raw.get("launcherIdleExit", defaults.launcher_idle_exit_s)
        ),
        user_namespace=_user_namespace(raw.get("userNamespace", defaults.user_namespace)),
        max_workspace_bytes=parse_size_bytes(
            raw.get("maxWorkspaceSize", defaults.max_workspace_bytes)
        ),
        unique_job_names=_boolean("joblet.uniqueJobNames", raw.get("uniqueJobNames", False)),
        stop_jobs_on_shutdown=_boolean(
            "joblet.stopJobsOnShutdown", raw.get("stopJobsOnShutdown", False)
        ),
        priority_aging_s=parse_duration_s(raw.get("priorityAging", defaults.priority_aging_s)),
        preemption=_boolean("joblet.preemption", raw.get("preemption", defaults.preemption)),
        max_requeues=_whole("joblet.maxRequeues", raw.get("maxRequeues", defaults.max_requeues)),
        retention=_retention(_section(raw, "jobRetention")),
        min_free_pids=_whole("joblet.minFreePids", raw.get("minFreePids", defaults.min_free_pids)),
    )


def _retention(raw: Mapping[str, Any]) -> JobRetention:
    """`joblet.jobRetention: {maxAge: 7d, maxJobs: 10000, interval: 1m}`."""
    defaults = JobRetention()
    max_jobs = raw.get("maxJobs", defaults.max_jobs)
    if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 0:
        raise ValueError(
            f"joblet.jobRetention.maxJobs must be a whole number >= 0, not {max_jobs!r}"
        )
    interval = parse_duration_s(raw.get("interval", defaults.interval_s))
    if interval <= 0:
        raise ValueError("joblet.jobRetention.interval must be positive")
    return JobRetention(
        max_age_s=parse_duration_s(raw.get("maxAge", defaults.max_age_s)),
        max_jobs=max_jobs,
        interval_s=interval,
    )


def _whole(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a whole number >= 0, not {value!r}")
    return value


def _roles(raw: Mapping[str, Any]) -> RolesConfig:
    """`roles.maxPriority: {ROLE: N}`: the highest priority each role may set."""
    caps = raw.get("maxPriority") or {}
    if not isinstance(caps, Mapping):
        raise ValueError("roles.maxPriority must map roles to priorities")
    checked: dict[str, int] = {}
    for role, cap in caps.items():
        if isinstance(cap, bool) or not isinstance(cap, int) or not -1000 <= cap <= 1000:
            raise ValueError(f"roles.maxPriority.{role} must be a whole number in -1000..1000")
        checked[str(role)] = cap
    return RolesConfig(max_priority=checked)


USER_NAMESPACE_MODES = ("auto", "on", "off")


def _user_namespace(value: Any) -> str:
    """`joblet.userNamespace`: auto, on or off (YAML's booleans too)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value not in USER_NAMESPACE_MODES:
        raise ValueError(f"joblet.userNamespace must be auto, on or off, not {value!r}")
    return str(value)


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {value!r}")
    return value


def _max_open_files(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"joblet.maxOpenFiles must be a whole number >= 0, not {value!r}")
    return value


def _allowed_users(value: Any) -> tuple[tuple[int, int], ...] | None:
    """`joblet.allowedUsers`: names, UIDs or UID:GIDs, as `rnx run --user` takes them."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("joblet.allowedUsers must be a list of user names or ids")
    users = []
    for entry in value:
        try:
            user = check_user(str(entry))
        except InvalidArgument as exc:
            raise ValueError(f"joblet.allowedUsers: {exc}") from exc
        if user is None:
            raise ValueError("joblet.allowedUsers: an entry is empty")
        users.append(user)
    return tuple(users)


def _filesystem(raw: Mapping[str, Any]) -> FilesystemConfig:
    defaults = FilesystemConfig()
    mounts = raw.get("allowedMounts", defaults.allowed_mounts)
    if not all(isinstance(m, str) and m.startswith("/") for m in mounts):
        raise ValueError("filesystem.allowedMounts must be absolute paths")
    for mount in mounts:
        problem = mount_problem(mount)
        if problem is not None:
            raise ValueError(f"filesystem.allowedMounts: {problem}")
    return FilesystemConfig(
        allowed_mounts=tuple(mounts),
        tmp_size_bytes=parse_size_bytes(raw.get("tmpSize", defaults.tmp_size_bytes)),
    )


def _cgroup(raw: Mapping[str, Any]) -> CgroupConfig:
    limits = raw.get("defaults") or {}
    parent = str(raw.get("parent", "joblet"))
    if not parent or ".." in parent.split("/") or parent.startswith("/"):
        raise ValueError("cgroup.parent must be a relative path without '..'")
    backend = raw.get("backend", "auto")
    if backend not in CGROUP_BACKENDS:
        raise ValueError(f"cgroup.backend must be one of {', '.join(CGROUP_BACKENDS)}")
    return CgroupConfig(
        mount_root=Path(raw.get("mountRoot", "/sys/fs/cgroup")),
        parent=parent,
        backend=backend,
        defaults=LimitDefaults(
            max_cpu=int(limits.get("maxCpu", 0)),
            max_memory_mb=int(limits.get("maxMemory", 0)),
            max_iobps=int(limits.get("maxIobps", 0)),
            max_pids=int(limits.get("maxPids", 1024)),
        ),
    )
