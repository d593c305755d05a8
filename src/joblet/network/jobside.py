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

`plan` is the LaunchSpec.network dict built by NetworkManager.allocate.
"""

from __future__ import annotations

from typing import Any

from pyroute2 import IPRoute  # type: ignore[import-untyped]

from joblet.network.addressing import tbf_burst_bytes

JOB_IFACE = "eth0"
IN6_ADDR_GEN_MODE_NONE = 1
_NO_IPV6 = {
    "attrs": [("AF_INET6", {"attrs": [("IFLA_INET6_ADDR_GEN_MODE", IN6_ADDR_GEN_MODE_NONE)]})]
}


def needs_veth(plan: dict[str, Any]) -> bool:
    return plan.get("mode") in ("bridge", "isolated")


def open_host_socket() -> IPRoute:
    return IPRoute()


def setup(plan: dict[str, Any], host_ns_fd: int, host: IPRoute) -> None:
    # New interfaces copy conf/default: eth0 is created without IPv6 while
    # lo, which already exists, keeps ::1.
    with open("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w") as f:
        f.write("1")
    with IPRoute() as job:
        job.link(
            "add",
            ifname=JOB_IFACE,
            kind="veth",
            mtu=plan["mtu"],
            peer={"ifname": plan["host_veth"], "net_ns_fd": host_ns_fd, "mtu": plan["mtu"]},
        )
        index = job.link_lookup(ifname=JOB_IFACE)[0]
        job.addr("add", index=index, address=plan["address"], prefixlen=plan["prefixlen"])
        if plan.get("egress_bps"):
            _tbf(job, index, plan["egress_bps"], plan["mtu"])
        job.link("set", index=index, state="up")
        job.route("add", dst="0.0.0.0/0", gateway=plan["gateway"])
    _host_side(plan, host)


def _host_side(plan: dict[str, Any], host: IPRoute) -> None:
    index = host.link_lookup(ifname=plan["host_veth"])[0]
    host.link("set", index=index, IFLA_AF_SPEC=_NO_IPV6)
    if plan.get("bridge"):
        master = host.link_lookup(ifname=plan["bridge"])[0]
        host.link("set", index=index, master=master)
    else:  # isolated: a point-to-point /30, the host side is the gateway
        host.addr("add", index=index, address=plan["gateway"], prefixlen=plan["prefixlen"])
    if plan.get("ingress_bps"):
        _tbf(host, index, plan["ingress_bps"], plan["mtu"])
    host.link("set", index=index, state="up")


def _tbf(ipr: IPRoute, index: int, bits_per_sec: int, mtu: int) -> None:
    burst = tbf_burst_bytes(bits_per_sec, mtu)
    # limit: bytes queued beyond the bucket; ~50 ms worth keeps TCP happy.
    limit = max(burst, bits_per_sec // 8 // 20)
    ipr.tc("add", "tbf", index, rate=bits_per_sec // 8, burst=burst, limit=limit)
