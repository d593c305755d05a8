"""Node-local network state: custom networks and per-job allocations.

Plain data in two JSON files, each written atomically (temp file + rename),
so a daemon killed at any point finds either the old or the new state:

- state.json: the custom networks, the nftables table and retired bridges.
  Rarely written, and fsynced: they must outlive a power loss.
- allocations.json: the jobs' addresses (and where the next search starts).
  Written on every bridge job's start and end, and never fsynced: a job's
  start must not wait for a journal commit, which takes whatever else the
  file system has pending with it (other jobs' files, a runtime's records)
  and costs milliseconds on a busy disk. A killed daemon still finds the
  file (the kernel keeps it); a host that crashes ends every job, so a
  stale or torn file then only names jobs that are gone, and none is taken.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)
ALLOCATIONS_FILE = "allocations.json"


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
        """What state.json holds (see the module docstring)."""
        raw: dict[str, Any] = {
            "networks": {k: asdict(v) for k, v in self.networks.items()},
            "table": self.table,
            "retired": self.retired,
        }
        return json.dumps(raw, indent=1, sort_keys=True)

    def allocations_json(self) -> str:
        """What allocations.json holds."""
        raw = {
            "allocations": {k: asdict(v) for k, v in self.allocations.items()},
            "cursors": self.cursors,
        }
        return json.dumps(raw, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, allocations_text: str | None = None) -> NetState:
        """From state.json and allocations.json; without the latter, the
        allocations an earlier version kept in state.json."""
        raw = json.loads(text)
        jobs = raw if allocations_text is None else json.loads(allocations_text)
        return cls(
            networks={k: NetworkDef(**v) for k, v in raw.get("networks", {}).items()},
            allocations={k: Allocation(**v) for k, v in jobs.get("allocations", {}).items()},
            cursors={k: int(v) for k, v in jobs.get("cursors", {}).items()},
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


def allocations_path(state_path: str) -> str:
    """allocations.json, next to state.json."""
    return os.path.join(os.path.dirname(state_path), ALLOCATIONS_FILE)


def load_state(path: str) -> NetState:
    """The state saved at `path` (state.json) and its allocations file."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "{}"
    jobs = _read_allocations(allocations_path(path))
    return NetState.from_json(text, jobs)


def _read_allocations(path: str) -> str | None:
    """allocations.json's text; None when there is none (an earlier version's
    state); an empty set when it cannot be read whole, which only a host
    crash leaves (see the module docstring): no job of then runs now."""
    try:
        with open(path) as f:
            text = f.read()
        json.loads(text)
        return text
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("network allocations in %s unreadable (%s); starting with none", path, exc)
        return "{}"


def save_state(path: str, state: NetState) -> None:
    """Everything: the allocations, then state.json, fsynced."""
    save_allocations(path, state)
    _replace(path, state.to_json(), durable=True)


def save_allocations(path: str, state: NetState) -> None:
    """The allocations only, never fsynced (see the module docstring)."""
    _replace(allocations_path(path), state.allocations_json(), durable=False)


def _replace(path: str, text: str, *, durable: bool) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
        if durable:
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
