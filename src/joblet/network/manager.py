"""NetworkManager: the daemon's shell around job networks.

Decide under a lock (pure addressing rules on `NetState`), persist, then do
host I/O (bridges, nft). Allocation is cheap: it waits for no disk (see
alloclog) and never touches a veth: the job side builds its own pair (see
jobside.py) and its namespace takes it away.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from joblet.errors import (
    AlreadyExists,
    ConfigError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from joblet.isolation import etcfiles
from joblet.network import addressing as ad
from joblet.network import firewall, hostnet
from joblet.network.alloclog import AllocationLog, add_record, drop_record, load_with_log
from joblet.network.config import NetworkConfig
from joblet.network.ownership import claim_prefix, remove_daemon_objects
from joblet.network.state import (
    Allocation,
    NetState,
    NetworkDef,
    recorded_links,
    render_hosts,
    rewrite_in_place,
    save_state,
)

log = logging.getLogger(__name__)
BRIDGE, ISOLATED, NONE, HOST = "bridge", "isolated", "none", "host"


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    cidr: str
    bridge: str
    job_count: int
    builtin: bool


class NetworkManager:
    def __init__(
        self,
        config: NetworkConfig,
        state_dir: str,
        daemon_id: str,
        resolv_conf: str = "/etc/resolv.conf",
        procfs: str = "/proc",
    ) -> None:
        self.config = config
        self.state_dir = state_dir
        self.prefix = ad.daemon_prefix(daemon_id)
        self.table = firewall.table_name(daemon_id, self.prefix)
        self.daemon_id = daemon_id
        self.procfs = procfs
        self._lock = threading.Lock()
        self._state = NetState()
        self._state_path = os.path.join(state_dir, "state.json")
        self._alloc_log = AllocationLog(state_dir)
        self.gso_bytes = 0  # set by start()
        # Custom networks whose range another interface held at start: name -> why.
        self._unavailable: dict[str, str] = {}
        self.nameservers = self._pick_nameservers(resolv_conf)
        builtin_bridge = NetworkDef(BRIDGE, config.bridge_cidr, ad.bridge_name(daemon_id, BRIDGE))
        self._builtins = {
            BRIDGE: builtin_bridge,
            ISOLATED: NetworkDef(ISOLATED, config.isolated_pool, ""),
        }

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        """Load state, recreate missing bridges and rules, remove leftovers."""
        os.makedirs(os.path.join(self.state_dir, "hosts"), exist_ok=True)
        self._state = load_with_log(self._state_path, self._alloc_log)
        if not self._alloc_log.exists():
            # First start of this version: the allocations an earlier one kept
            # in state.json go to the log before state.json is written without them.
            self._alloc_log.rewrite(self._state.allocations, self._state.cursors)
        self._claim_prefix(firewall.list_tables())
        self._check_builtins()
        self._find_clashes()
        hostnet.enable_forwarding(self.procfs)
        for net in self._live():
            self._ensure_bridge(net)
        self._apply_firewall()
        self._remove_leftover_links()
        self.gso_bytes = hostnet.job_gso_bytes(self.config.big_tcp, self.prefix)
        log.info("job veths: IPv4 GSO limit %s", self.gso_bytes or "kernel default (64 KiB)")

    def restore(self, running_job_ids: Iterable[str]) -> None:
        """Keep the allocations of jobs still running; release the rest."""
        keep = set(running_job_ids)
        with self._lock:
            gone = [j for j in self._state.allocations if j not in keep]
            touched = {self._state.allocations.pop(j).network for j in gone}
            self._alloc_log.rewrite(self._state.allocations, self._state.cursors)
        for name in touched | set(self._state.networks):
            self._write_hosts(name)

    def remove_all(self) -> list[str]:
        """Tear down this daemon's bridges and table (a clean stop with no job
        left, tests). Custom networks stay defined: start() recreates them."""
        return remove_daemon_objects(self.table, self.prefix, self._recorded_links())

    def _recorded_links(self) -> set[str]:
        with self._lock:
            return recorded_links(self._state, self._builtins[BRIDGE].bridge)

    def _claim_prefix(self, tables: list[str]) -> None:
        """Refuse to start when another daemon in this network namespace uses
        our interface prefix; remove the table an earlier version of this
        daemon left under the old, prefix-only name."""
        claim = claim_prefix(tables, self.prefix, self.table, self._state.table)
        if claim.own_legacy:
            log.info("removing nftables table %s of an earlier version", claim.own_legacy)
            firewall.apply(firewall.render_delete(claim.own_legacy))
        if claim.others:
            raise ConfigError(
                f"another joblet daemon in this network namespace uses the interface prefix"
                f" {self.prefix!r} (nftables table {claim.others[0]}): give this daemon another"
                " server.nodeId, or run it in a network namespace of its own"
            )
        if self._state.table != self.table:
            with self._lock:
                self._state.table = self.table
                save_state(self._state_path, self._state)

    # --- jobs -------------------------------------------------------------

    def allocate(
        self,
        job_id: str,
        network: str,
        job_name: str = "",
        *,
        ingress_bps: int = 0,
        egress_bps: int = 0,
        admin: bool = False,
    ) -> dict[str, Any]:
        """Reserve the job's address; returns the LaunchSpec.network value."""
        mode = network or self.config.default_mode
        ingress, egress = self._rates(mode, ingress_bps, egress_bps)
        if mode == NONE:
            return {"mode": NONE, "network": NONE, "nameservers": []}
        if mode == HOST:
            return self._host_mode(job_id, admin)
        self._refuse_unavailable(mode)
        with self._lock:
            alloc = self._reserve(job_id, mode, job_name, ingress, egress)
            # One appended line: the start waits for no disk (see alloclog).
            self._record(add_record(alloc, self._state.cursors.get(alloc.network, 0)))
        if mode in self._state.networks:
            self._write_hosts(mode)
        return self.plan(alloc)

    def check_request(self, network: str, ingress_bps: int, egress_bps: int, *, admin: bool) -> str:
        """Refuse at submission what allocate() would refuse at start (unknown
        network, host mode without permission, bad rates); returns the mode."""
        mode = network or self.config.default_mode
        self._rates(mode, ingress_bps, egress_bps)
        if mode == HOST:
            self._host_mode("(request)", admin)
        elif mode != NONE:
            self._net(mode)
            self._refuse_unavailable(mode)
        return mode

    def plan(self, alloc: Allocation) -> dict[str, Any]:
        isolated = alloc.network == ISOLATED
        plan: dict[str, Any] = {
            "mode": ISOLATED if isolated else BRIDGE,
            "network": alloc.network,
            "address": alloc.address,
            "prefixlen": alloc.prefixlen,
            "gateway": alloc.gateway,
            "host_veth": alloc.host_veth,
            "bridge": "" if isolated else self._net(alloc.network).bridge,
            "mtu": self.config.mtu,
            "gso_bytes": self.gso_bytes,
            "ingress_bps": alloc.ingress_bps,
            "egress_bps": alloc.egress_bps,
            "nameservers": list(self.nameservers),
        }
        if alloc.network in self._state.networks:
            plan["hosts_file"] = self._hosts_path(alloc.network)
        return plan

    def release(self, job_id: str) -> None:
        """Free the job's address (its veth goes with its namespace)."""
        with self._lock:
            alloc = self._state.allocations.pop(job_id, None)
            if alloc is None:
                return
            self._record(drop_record(job_id))
        if alloc.network in self._state.networks:
            self._write_hosts(alloc.network)

    def drop_links_of(self, job_id: str) -> None:
        """The host end of an earlier run's veth, should its namespace still
        be going away (the kernel frees it in the background): a new run of
        the same job wires one of the same name."""
        for isolated in (False, True):
            hostnet.delete_link(ad.host_veth_name(self.daemon_id, job_id, isolated))

    def _record(self, line: str) -> None:
        """Under the lock: one change of the allocations, to the log."""
        self._alloc_log.append(line, self._state.allocations, self._state.cursors)

    def allocation(self, job_id: str) -> Allocation | None:
        with self._lock:
            return self._state.allocations.get(job_id)

    def jobs_on(self, network: str) -> list[str]:
        with self._lock:
            return self._state.jobs_on(network)

    # --- custom networks ----------------------------------------------------

    def create_network(self, name: str, cidr: str) -> NetworkInfo:
        ad.validate_name(name)
        net = ad.parse_cidr(cidr)
        host_nets = self._host_nets()
        with self._lock:
            if name in self._state.networks:
                raise AlreadyExists(f"network {name!r} already exists")
            if len(self._state.networks) >= self.config.max_custom_networks:
                raise ResourceExhausted(
                    f"at most {self.config.max_custom_networks} custom networks"
                    " (network.maxCustomNetworks)"
                )
            ad.check_overlaps(net, self._taken(), host_nets)
            new = NetworkDef(name, str(net), ad.bridge_name(self.daemon_id, name))
            self._state.networks[name] = new
            save_state(self._state_path, self._state)
        self._ensure_bridge(new)
        self._write_hosts(name)
        self._apply_firewall()
        return NetworkInfo(new.name, new.cidr, new.bridge, 0, False)

    def remove_network(self, name: str, users: Iterable[str] = ()) -> None:
        """Remove a custom network; `users` are queued/scheduled jobs naming it."""
        if name in self._builtins or name in (NONE, HOST):
            raise InvalidArgument(f"network {name!r} is built in")
        ad.check_name_format(name)  # before the name is looked up or joined to a path
        with self._lock:
            if name not in self._state.networks:
                raise NotFound(f"network {name!r} not found")
            in_use = sorted(set(self._state.jobs_on(name)) | set(users))
            if in_use:
                raise FailedPrecondition(f"network {name!r} is used by jobs: {', '.join(in_use)}")
            net = self._state.networks.pop(name)
            self._state.cursors.pop(name, None)
            self._unavailable.pop(name, None)
            self._state.retired.append(net.bridge)
            save_state(self._state_path, self._state)
        self._apply_firewall()
        hostnet.delete_link(net.bridge)
        with self._lock:
            self._state.retired.remove(net.bridge)
            save_state(self._state_path, self._state)
        if os.path.exists(self._hosts_path(name)):
            os.unlink(self._hosts_path(name))

    def list_networks(self) -> list[NetworkInfo]:
        with self._lock:
            nets = [(n, True) for n in self._builtins.values()]
            nets += [
                (n, False) for n in sorted(self._state.networks.values(), key=lambda n: n.name)
            ]
            out = [
                NetworkInfo(n.name, n.cidr, n.bridge, len(self._state.jobs_on(n.name)), b)
                for n, b in nets
            ]
        return [*out, NetworkInfo(NONE, "", "", 0, True)]

    # --- decisions (under the lock) -----------------------------------------

    def _reserve(
        self, job_id: str, network: str, job_name: str, ingress: int, egress: int
    ) -> Allocation:
        if job_id in self._state.allocations:
            return self._state.allocations[job_id]
        net = self._net(network)
        cidr = ipaddress.IPv4Network(net.cidr)
        if network in self._state.networks and job_name:
            for other in self._state.allocations.values():
                if other.network == network and other.job_name == job_name:
                    raise AlreadyExists(
                        f"a job named {job_name!r} already runs on network {network!r}"
                    )
        cursor = self._state.cursors.get(network, 0)
        isolated = network == ISOLATED
        found = (ad.next_subnet if isolated else ad.next_address)(
            cidr, self._state.slots(network), cursor
        )
        if found is None:
            raise ResourceExhausted(f"network {network!r} has no free address")
        slot, self._state.cursors[network] = found
        sub = ad.subnet30(cidr, slot) if isolated else cidr
        address = sub.network_address + 2 if isolated else cidr.network_address + slot
        alloc = Allocation(
            job_id, network, job_name, str(address), sub.prefixlen, str(ad.gateway(sub)),
            ad.host_veth_name(self.daemon_id, job_id, isolated), slot, ingress, egress,
        )  # fmt: skip
        self._state.allocations[job_id] = alloc
        return alloc

    def _rates(self, mode: str, ingress: int, egress: int) -> tuple[int, int]:
        if (ingress or egress) and mode in (NONE, HOST):
            raise InvalidArgument(f"bandwidth limits need a network; network {mode!r} has none")
        for value in (ingress, egress):
            if value < 0 or value > self.config.max_bits_per_sec:
                raise InvalidArgument(
                    f"rate {value} bit/s outside 0..{self.config.max_bits_per_sec}"
                    " (network.maxBitsPerSec)"
                )
        return ingress or self.config.default_ingress_bps, egress or self.config.default_egress_bps

    def _host_mode(self, job_id: str, admin: bool) -> dict[str, Any]:
        if not self.config.allow_host:
            raise PermissionDenied(
                "network 'host' is disabled on this node (network.allowHost: false)"
            )
        if not admin:
            raise PermissionDenied("network 'host' needs the admin role")
        log.warning("job %s starts with the host's network", job_id)
        return {"mode": HOST, "network": HOST, "nameservers": list(self.nameservers)}

    def _net(self, name: str) -> NetworkDef:
        found = self._builtins.get(name) or self._state.networks.get(name)
        if found is None:
            raise NotFound(f"network {name!r} not found")
        return found

    def _taken(self) -> dict[str, ipaddress.IPv4Network]:
        nets = [*self._builtins.values(), *self._state.networks.values()]
        return {n.name: ipaddress.IPv4Network(n.cidr) for n in nets}

    # --- I/O helpers ----------------------------------------------------------

    def _pick_nameservers(self, resolv_conf: str) -> tuple[str, ...]:
        if self.config.dns:
            return self.config.dns
        try:
            with open(resolv_conf) as f:
                text = f.read()
        except OSError:
            text = ""
        servers = etcfiles.host_nameservers(text)
        if not servers:
            fallback = list(self.config.dns_fallback)
            log.warning("host nameservers loopback-only or missing; using dnsFallback %s", fallback)
            return self.config.dns_fallback
        return tuple(servers)

    def _host_nets(self) -> list[ipaddress.IPv4Network]:
        nets = [ipaddress.IPv4Network(c, strict=False) for c in hostnet.host_networks()]
        for server in self.nameservers:
            if ipaddress.ip_address(server).version == 4:
                nets.append(ipaddress.IPv4Network(f"{server}/32"))
        return [
            n for n in nets if not any(n == ipaddress.IPv4Network(t.cidr) for t in self._bridged())
        ]

    def _check_builtins(self) -> None:
        bridge = ipaddress.IPv4Network(self.config.bridge_cidr)
        pool = ipaddress.IPv4Network(self.config.isolated_pool)
        for net in self._state.networks.values():
            for builtin in (bridge, pool):
                if ipaddress.IPv4Network(net.cidr).overlaps(builtin):
                    raise ConfigError(
                        f"custom network {net.name!r} ({net.cidr}) overlaps built-in {builtin}"
                    )

    def _bridged(self) -> list[NetworkDef]:
        return [self._builtins[BRIDGE], *self._state.networks.values()]

    def _live(self) -> list[NetworkDef]:
        """The bridged networks that have (or get) a bridge and rules."""
        return [n for n in self._bridged() if n.name not in self._unavailable]

    def _find_clashes(self) -> None:
        """Custom networks whose range another interface holds now (a network
        another daemon in this namespace made while this one was stopped, or
        a new host route) get no bridge: a second bridge on the range would
        take the other's route. Jobs cannot use them until they are removed."""
        custom = {n.name: n.cidr for n in self._state.networks.values()}
        self._unavailable = ad.clashes(custom, hostnet.other_links_networks(self.prefix))
        for why in self._unavailable.values():
            log.error("%s: the network has no bridge until it is removed", why)

    def _refuse_unavailable(self, network: str) -> None:
        why = self._unavailable.get(network)
        if why is not None:
            raise FailedPrecondition(
                f"{why} in the daemon's network namespace: jobs cannot use it; remove"
                " the network, or free its range and restart the daemon"
            )

    def _ensure_bridge(self, net: NetworkDef) -> None:
        cidr = ipaddress.IPv4Network(net.cidr)
        hostnet.ensure_bridge(
            net.bridge, str(ad.gateway(cidr)), cidr.prefixlen, self.config.mtu, self.procfs
        )

    def _apply_firewall(self) -> None:
        nets = [firewall.FirewallNet(n.cidr, n.bridge) for n in self._live()]
        nets.append(
            firewall.FirewallNet(self.config.isolated_pool, f"{self.prefix}i*", bridged=False)
        )
        firewall.apply(firewall.render_ruleset(self.table, self.prefix, nets))

    def _remove_leftover_links(self) -> None:
        """Delete the bridges of removed networks a crash left. Interfaces with
        this prefix that this daemon has no record of are not its own."""
        existing = set(hostnet.links_with_prefix(self.prefix))
        with self._lock:
            retired, self._state.retired = self._state.retired, []
        for name in sorted(set(retired) & existing):
            log.info("removing leftover interface %s", name)
            hostnet.delete_link(name)
        if retired:
            with self._lock:
                save_state(self._state_path, self._state)

    def _hosts_path(self, network: str) -> str:
        return os.path.join(self.state_dir, "hosts", network)

    def _write_hosts(self, network: str) -> None:
        if network not in self._state.networks:
            return
        with self._lock:
            entries = [
                (a.address, a.job_name, a.job_id)
                for a in self._state.allocations.values()
                if a.network == network
            ]
        rewrite_in_place(self._hosts_path(network), render_hosts(entries))
