"""Node-local network state: custom networks and per-job allocations.

Plain data. The custom networks, the nftables table and retired bridges are
saved in state.json, written atomically (temp file + rename) and fsynced, so
a daemon killed at any point, or a host that loses power, finds either the
old or the new state. The jobs' allocations change at every bridge job's
start and end and are kept apart, in an append-only log (see alloclog);
state.json written by an earlier version holds them too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class NetworkDef:
    name: str
    cidr: str
    bridge: str  # "" for the isolated pool


@dataclass(frozen=True)
class Allocation:
    job_id: str
    network: str
    job_name: str
    address: str
    prefixlen: int
    gateway: str
    host_veth: str
    slot: int  # host offset (bridge networks) or /30 index (isolated)
    ingress_bps: int = 0
    egress_bps: int = 0


@dataclass
class NetState:
    networks: dict[str, NetworkDef] = field(default_factory=dict)  # custom ones only
    allocations: dict[str, Allocation] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    # The nftables table this daemon made ("" before this was recorded).
    table: str = ""
    # Bridges of removed networks until they are known to be gone (a crash
    # between the two steps leaves one for the next start to delete).
    retired: list[str] = field(default_factory=list)

    def slots(self, network: str) -> set[int]:
        return {a.slot for a in self.allocations.values() if a.network == network}

    def jobs_on(self, network: str) -> list[str]:
        return sorted(a.job_id for a in self.allocations.values() if a.network == network)

    def to_json(self) -> str:
        """state.json: all but the allocations and cursors (see alloclog)."""
        raw: dict[str, Any] = {
            "networks": {k: asdict(v) for k, v in self.networks.items()},
            "table": self.table,
            "retired": self.retired,
        }
        return json.dumps(raw, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NetState:
        raw = json.loads(text)
        return cls(
            networks={k: NetworkDef(**v) for k, v in raw.get("networks", {}).items()},
            allocations={k: Allocation(**v) for k, v in raw.get("allocations", {}).items()},
            cursors={k: int(v) for k, v in raw.get("cursors", {}).items()},
            table=str(raw.get("table", "")),
            retired=[str(name) for name in raw.get("retired", [])],
        )


def recorded_links(state: NetState, builtin_bridge: str) -> set[str]:
    """The interfaces a daemon with `state` made: its bridges, the host ends
    of its jobs' veths, and bridges of removed networks not yet seen gone."""
    links = {builtin_bridge, *state.retired}
    links |= {net.bridge for net in state.networks.values()}
    links |= {alloc.host_veth for alloc in state.allocations.values()}
    return links


def load_state(path: str) -> NetState:
    try:
        with open(path) as f:
            return NetState.from_json(f.read())
    except FileNotFoundError:
        return NetState()


def save_state(path: str, state: NetState) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(state.to_json())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def render_hosts(entries: list[tuple[str, str, str]]) -> str:
    """A custom network's /etc/hosts: (address, job name, job id) per job."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for address, name, job_id in sorted(entries):
        names = [n for n in (name, f"job-{job_id[:8]}") if n]
        lines.append(f"{address}\t{' '.join(dict.fromkeys(names))}")
    return "\n".join(lines) + "\n"


def rewrite_in_place(path: str, text: str) -> None:
    """Rewrite without replacing the inode: jobs see it through bind mounts
    of this very file, which a rename would leave pointing at the old one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        data = text.encode()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
