"""The job's half of its network, run by the launcher's first forked child.

Call order in the child (see isolation.child.run_a):
  1. `open_host_socket()` before unshare(CLONE_NEWNET): a netlink socket
     bound to the launcher's (host) namespace.
  2. unshare, then `setup(plan, host_ns_fd, host_socket)`: the veth is
     created from inside the new namespace with its peer placed in the host
     namespace (IFLA_NET_NS_FD), so nothing is moved between namespaces and,
     when the job ends, dropping its namespace frees the pair: no veth is ever
     deleted on the start or stop path. The job side gets its address, route,
     MTU and egress tbf; the host side is attached to the bridge (or given
     the /30 gateway), gets its ingress tbf and comes up, all before the
     command runs (it has no CAP_NET_ADMIN to undo any of it).

Requests go over raw rtnetlink (network.netlink), batched: one round trip to
create the pair, one per side to configure it, one to look up host indexes.
`plan` is the LaunchSpec.network dict built by NetworkManager.allocate.
"""

from __future__ import annotations

import socket
from typing import Any

from joblet.network import netlink as nl
from joblet.network.addressing import tbf_burst_bytes, tbf_limit_bytes

JOB_IFACE = "eth0"


def needs_veth(plan: dict[str, Any]) -> bool:
    return plan.get("mode") in ("bridge", "isolated")


def open_host_socket() -> nl.RtNetlink:
    return nl.RtNetlink()


def setup(plan: dict[str, Any], host_ns_fd: int, host: nl.RtNetlink) -> None:
    # New interfaces copy conf/default: eth0 is created without IPv6 while
    # lo, which already exists, keeps ::1.
    _write_sysctl("net/ipv6/conf/default/disable_ipv6", "1")
    # Jobs have no CAP_NET_RAW (no forged sources); ICMP datagram sockets
    # keep ping working for every group, in this namespace only.
    _write_sysctl("net/ipv4/ping_group_range", "0 2147483647")
    with nl.RtNetlink() as job:
        veth = nl.veth_create(
            JOB_IFACE, plan["mtu"], plan["host_veth"], host_ns_fd, plan.get("gso_bytes", 0)
        )
        job.transact([veth])
        job.transact(job_side_requests(plan, socket.if_nametoindex(JOB_IFACE)))
    names = [plan["host_veth"]] + ([plan["bridge"]] if plan.get("bridge") else [])
    indexes = host.link_indexes(*names)
    host.transact(host_side_requests(plan, indexes[0], indexes[1] if len(indexes) > 1 else 0))


def _write_sysctl(name: str, value: str) -> None:
    with open(f"/proc/sys/{name}", "w") as f:
        f.write(value)


def job_side_requests(plan: dict[str, Any], index: int) -> list[nl.Request]:
    """Address, egress tbf, up, then the default route (needs the link up)."""
    reqs = [nl.addr_add(index, plan["address"], plan["prefixlen"])]
    if plan.get("egress_bps"):
        reqs.append(_tbf(index, plan["egress_bps"], plan["mtu"]))
    return [*reqs, nl.link_set(index, up=True), nl.default_route(plan["gateway"], index)]


def host_side_requests(plan: dict[str, Any], index: int, bridge: int) -> list[nl.Request]:
    """No IPv6 before it comes up; on the bridge, or (isolated: a
    point-to-point /30) the gateway address; ingress tbf; up."""
    if bridge:
        reqs = [nl.link_set(index, master=bridge, no_ipv6=True)]
    else:
        reqs = [
            nl.link_set(index, no_ipv6=True),
            nl.addr_add(index, plan["gateway"], plan["prefixlen"]),
        ]
    if plan.get("ingress_bps"):
        reqs.append(_tbf(index, plan["ingress_bps"], plan["mtu"]))
    return [*reqs, nl.link_set(index, up=True)]


def _tbf(index: int, bits_per_sec: int, mtu: int) -> nl.Request:
    burst, limit = tbf_burst_bytes(bits_per_sec, mtu), tbf_limit_bytes(bits_per_sec, mtu)
    return nl.tbf_add(index, bits_per_sec // 8, burst, limit)
