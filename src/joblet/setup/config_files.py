"""The text of joblet-config.yml and rnx-config.yml: pure rendering, no I/O.

Defaults are written out visibly (taken from the config model, so file and
code cannot disagree) so that an operator sees every knob there is to turn.
PEM text is written as YAML literal blocks, readable and copy-pasteable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from joblet.config.host_disk import default_workspace_bytes
from joblet.config.host_memory import default_job_memory_mb, memory_volume_cap
from joblet.config.model import (
    DEFAULT_ALLOWED_MOUNTS,
    CgroupConfig,
    FilesystemConfig,
    JobsConfig,
    LimitDefaults,
    SecurityConfig,
)
from joblet.setup.ranges import Placement

WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})
_SIZE_UNITS = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


@dataclass(frozen=True)
class NodeEntry:
    """One node of rnx-config.yml: where the daemon listens and how to prove who we are."""

    address: str
    cert: str
    key: str
    ca: str

    def as_yaml_mapping(self) -> dict[str, str]:
        return {"address": self.address, "cert": self.cert, "key": self.key, "ca": self.ca}


def client_address(address: str, port: int, server_names: list[str]) -> str:
    """The `host:port` clients dial: the first server name, else the bind
    address, else 127.0.0.1 when the daemon binds every interface."""
    names = [n.strip() for n in server_names if n.strip()]
    host = names[0] if names else ("127.0.0.1" if address in WILDCARD_ADDRESSES else address)
    return f"{_bracket_ipv6(host)}:{port}"


def _bracket_ipv6(host: str) -> str:
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    return f"[{host}]" if is_v6 else host


def render_daemon_config(
    root: Path,
    address: str,
    port: int,
    security: SecurityConfig,
    placement: Placement,
    *,
    mem_total: int | None = None,
    disk_total: int | None = None,
) -> str:
    """joblet-config.yml in the shape `joblet.config.loader` reads, defaults spelled
    out, with the cgroup parent and network ranges set-up chose for this root,
    and the memory limits sized from the host's RAM (`mem_total` bytes; None
    leaves them unlimited), and the workspace cap from the disk under the root
    (`disk_total` bytes; None keeps the built-in default)."""
    jobs, fs, limits = JobsConfig(), FilesystemConfig(), LimitDefaults()
    if mem_total is not None:
        limits = replace(limits, max_memory_mb=default_job_memory_mb(mem_total))
    if disk_total is not None:
        jobs = replace(jobs, max_workspace_bytes=default_workspace_bytes(disk_total))
    doc: dict[str, Any] = {
        "server": {"address": address, "port": port, "nodeId": ""},
        "joblet": {
            "root": str(root),
            "maxConcurrentJobs": jobs.max_concurrent_jobs,
            "jobTimeout": _duration_text(jobs.job_timeout_s),
            "stopGracePeriod": _duration_text(jobs.stop_grace_s),
            "maxUploadSize": _size_text(jobs.max_upload_bytes),
            "maxLogSize": _size_text(jobs.max_log_bytes),
            "runAsUser": jobs.run_as_uid,
            "runAsGroup": jobs.run_as_gid,
            "allowedUsers": jobs.allowed_users,
            "maxOpenFiles": jobs.max_open_files,
            "maxWorkspaceSize": _size_text(jobs.max_workspace_bytes),
        },
        "security": {
            "serverCert": security.server_cert,
            "serverKey": security.server_key,
            "caCert": security.ca_cert,
        },
        "filesystem": {
            "allowedMounts": list(DEFAULT_ALLOWED_MOUNTS),
            "tmpSize": _size_text(fs.tmp_size_bytes),
        },
        "cgroup": {
            "mountRoot": str(CgroupConfig().mount_root),
            "parent": placement.cgroup_parent,
            "defaults": {
                "maxCpu": limits.max_cpu,
                "maxMemory": limits.max_memory_mb,
                "maxIobps": limits.max_iobps,
                "maxPids": limits.max_pids,
            },
        },
        "network": {
            "bridgeCidr": placement.bridge_cidr,
            "isolatedPool": placement.isolated_pool,
        },
    }
    if mem_total is not None:
        doc["volumes"] = {"maxMemorySize": _size_text(memory_volume_cap(mem_total))}
    header = "# joblet daemon configuration, written by `joblet setup`. Contains the server key.\n"
    return header + dump_yaml(doc)


def render_rnx_config(nodes: Mapping[str, NodeEntry]) -> str:
    """rnx-config.yml: `nodes:` mapping each node name to its entry."""
    header = "# rnx client configuration, written by `joblet setup`. Contains client keys.\n"
    return header + dump_yaml({"nodes": {n: e.as_yaml_mapping() for n, e in nodes.items()}})


def render_node_snippet(name: str, entry: NodeEntry) -> str:
    """A node entry to paste under `nodes:` of an rnx-config.yml (indented two spaces)."""
    body = dump_yaml({name: entry.as_yaml_mapping()})
    return "".join(f"  {line}" if line.strip() else line for line in body.splitlines(True))


def parse_rnx_nodes(text: str) -> dict[str, dict[str, Any]]:
    """The `nodes:` mapping of an rnx-config.yml (raw mappings, unvalidated)."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from exc
    nodes = raw.get("nodes") if isinstance(raw, Mapping) else None
    if nodes is None:
        return {}
    if not isinstance(nodes, Mapping) or not all(isinstance(v, Mapping) for v in nodes.values()):
        raise ValueError("`nodes` must map node names to mappings")
    return {str(k): dict(v) for k, v in nodes.items()}


def render_rnx_nodes(nodes: Mapping[str, Mapping[str, Any]]) -> str:
    header = "# rnx client configuration. Contains client keys.\n"
    return header + dump_yaml({"nodes": {k: dict(v) for k, v in nodes.items()}})


class _LiteralDumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings (PEM) as `|` literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _represent_str)


def dump_yaml(doc: Mapping[str, Any]) -> str:
    return yaml.dump(dict(doc), Dumper=_LiteralDumper, sort_keys=False, default_flow_style=False)


def _size_text(n: int) -> str:
    for unit, size in _SIZE_UNITS:
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def _duration_text(seconds: float) -> str:
    return f"{seconds:g}s"
