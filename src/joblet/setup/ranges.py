"""What `joblet setup` gives a daemon so it can run beside others on one host: a
cgroup parent and network ranges of its own. Pure: the host's routes and the
other daemons' configs come in as arguments (`neighbours` reads them).

The default root keeps the historical parent `joblet`; any other root gets
`joblet-<8 hex digits of sha256(root)>`, stable for that root and unlike any
other's. Ranges are the first candidates that overlap no host address or
route and no range another daemon's config names.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from joblet.config.model import DEFAULT_ROOT
from joblet.errors import ConfigError, InvalidArgument
from joblet.network.config import NetworkConfig, parse_network_config
from joblet.resources._names import parent_path
from joblet.resources.ownership import normal_root
from joblet.setup.layout import SetupError

DEFAULT_PARENT = "joblet"
# Private ranges, the defaults first: 172.20-31/16 for bridges (Docker takes
# 172.17-19 first), 10.254 down to 10.240 /16 for isolated pools.
BRIDGE_CANDIDATES = tuple(f"172.{n}.0.0/16" for n in range(20, 32))
POOL_CANDIDATES = tuple(f"10.{n}.0.0/16" for n in range(254, 239, -1))


@dataclass(frozen=True)
class OtherDaemon:
    """What another root's config claims on this host."""

    root: str
    cgroup_parent: str
    bridge_cidr: str
    isolated_pool: str
    node_id: str = ""  # what its interface and nftables names derive from; "" unknown


def default_cgroup_parent(root: str) -> str:
    root = normal_root(root)
    if root == str(DEFAULT_ROOT):
        return DEFAULT_PARENT
    return f"{DEFAULT_PARENT}-{hashlib.sha256(root.encode()).hexdigest()[:8]}"


def other_daemon_of(root: str, config_text: str, node_id: str = "") -> OtherDaemon | None:
    """The claims of the daemon config `config_text` of `root`; None when
    unreadable. `node_id` is the root's node-id file, which the config's
    `server.nodeId` overrides (as it does in the daemon)."""
    try:
        raw = yaml.safe_load(config_text)
    except yaml.YAMLError:
        return None
    if not isinstance(raw, Mapping):
        return None
    cgroup, network = _mapping(raw.get("cgroup")), _mapping(raw.get("network"))
    base = NetworkConfig()
    return OtherDaemon(
        normal_root(root),
        str(cgroup.get("parent", DEFAULT_PARENT)),
        str(network.get("bridgeCidr", base.bridge_cidr)),
        str(network.get("isolatedPool", base.isolated_pool)),
        str(_mapping(raw.get("server")).get("nodeId") or node_id),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parent_conflict(parent: str, others: Sequence[OtherDaemon]) -> str | None:
    for other in others:
        if _parts(other.cgroup_parent) == _parts(parent):
            return f"cgroup parent {parent!r} is the one of root {other.root}"
    return None


def _parts(parent: str) -> list[str]:
    return [p for p in parent.split("/") if p]


def taken_networks(host: Sequence[str], others: Sequence[OtherDaemon]) -> list[str]:
    """Every range a new daemon must not overlap: the host's addresses and routes
    (the default route excepted: it overlaps everything) and other daemons' ranges."""
    taken = [net for net in host if not net.endswith("/0")]
    for other in others:
        taken += [other.bridge_cidr, other.isolated_pool]
    return taken


def pick_free(candidates: Sequence[str], taken: Sequence[str]) -> str | None:
    """The first candidate that overlaps none of `taken` (unparsable entries skipped)."""
    nets = []
    for text in taken:
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    for candidate in candidates:
        net = ipaddress.ip_network(candidate)
        if not any(net.version == t.version and net.overlaps(t) for t in nets):
            return candidate
    return None


def choose_ranges(
    taken: Sequence[str], bridge_cidr: str | None, isolated_pool: str | None
) -> tuple[str, str]:
    """(bridgeCidr, isolatedPool): each as given, else the first free candidate
    that also keeps clear of the other one."""
    bridge = bridge_cidr or pick_free(BRIDGE_CANDIDATES, [*taken, *_given(isolated_pool)])
    if bridge is None:
        raise SetupError(_exhausted("bridge network", BRIDGE_CANDIDATES, "--bridge-cidr"))
    pool = isolated_pool or pick_free(POOL_CANDIDATES, [*taken, bridge])
    if pool is None:
        raise SetupError(_exhausted("isolated pool", POOL_CANDIDATES, "--isolated-pool"))
    return bridge, pool


def _given(cidr: str | None) -> list[str]:
    return [cidr] if cidr else []


def _exhausted(what: str, candidates: Sequence[str], flag: str) -> str:
    return (
        f"no free range for the {what} ({candidates[0]} to {candidates[-1]} all overlap "
        f"host routes or other daemons); pass {flag}"
    )


@dataclass(frozen=True)
class Placement:
    """Where a daemon's jobs live on the host: its cgroup parent and network ranges."""

    cgroup_parent: str
    bridge_cidr: str
    isolated_pool: str


@dataclass(frozen=True)
class PlacementRequest:
    """What the operator asked for; None = keep the root's current config, else pick."""

    cgroup_parent: str | None = None
    bridge_cidr: str | None = None
    isolated_pool: str | None = None


def decide_placement(
    root: str,
    asked: PlacementRequest,
    current: OtherDaemon | None,
    host: Sequence[str],
    others: Sequence[OtherDaemon],
) -> Placement:
    """The placement of `root`: what was asked, else what its current config says
    (a set-up again with --force keeps a running daemon's groups and bridge) unless
    another daemon's config took it meanwhile, else the default parent and free
    ranges. What was asked and clashes with another daemon's config is a
    SetupError. Ranges asked for or kept are not checked against the host's
    routes: the root's own running daemon has routes there."""
    theirs = taken_networks([], others)
    kept = current or OtherDaemon(root, "", "", "")
    parent = (
        asked.cgroup_parent
        or _kept_parent(kept.cgroup_parent, others)
        or default_cgroup_parent(root)
    )
    _check_parent(parent)
    clash = parent_conflict(parent, others)
    if clash is not None:
        raise SetupError(f"{clash}; pass --cgroup-parent NAME")
    ranges = []
    for cidr, keep, flag in (
        (asked.bridge_cidr, kept.bridge_cidr, "--bridge-cidr"),
        (asked.isolated_pool, kept.isolated_pool, "--isolated-pool"),
    ):
        if cidr and pick_free([_network(cidr, flag)], theirs) is None:
            raise SetupError(f"{cidr} overlaps another daemon's network range; pass {flag}")
        ranges.append(cidr or _kept_range(keep, theirs))
    bridge, pool = choose_ranges(taken_networks(host, others), *ranges)
    _checked(bridge, pool)
    return Placement(parent, bridge, pool)


def _kept_parent(parent: str, others: Sequence[OtherDaemon]) -> str | None:
    """The current config's parent, unless it is unusable or another root's too."""
    try:
        parent_path(parent)
    except InvalidArgument:
        return None
    return parent if parent_conflict(parent, others) is None else None


def _kept_range(cidr: str, theirs: Sequence[str]) -> str | None:
    """The current config's range, unless it is unusable or another daemon's too."""
    try:
        return pick_free([str(ipaddress.ip_network(cidr))], theirs)
    except ValueError:
        return None


def _check_parent(parent: str) -> None:
    try:
        parent_path(parent)
    except InvalidArgument as exc:
        raise SetupError(str(exc)) from exc


def _network(cidr: str, flag: str) -> str:
    try:
        return str(ipaddress.ip_network(cidr))
    except ValueError as exc:
        raise SetupError(f"{flag}: {exc}") from exc


def _checked(bridge: str, pool: str) -> None:
    """The ranges as the daemon's config loader will check them."""
    try:
        parse_network_config({"bridgeCidr": bridge, "isolatedPool": pool})
    except ConfigError as exc:
        raise SetupError(str(exc)) from exc
