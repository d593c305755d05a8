"""Host-side network plumbing of the daemon: bridges, forwarding, leftovers.

Runs in the daemon's network namespace (a test puts the whole daemon in one
of its own). Uses the raw rtnetlink client for what the daemon does at every
start (bridges, leftover links), pyroute2 only for the host's addresses and
routes when a network is created (importing it costs the daemon ~8 MB of
RSS), and /proc/sys for sysctls.
"""

from __future__ import annotations

import contextlib
import errno
import os

from joblet.network import netlink
from joblet.network.netlink import RtNetlink


def write_sysctl(path: str, value: str, procfs: str = "/proc") -> None:
    with open(os.path.join(procfs, "sys", path), "w") as f:
        f.write(value)


def enable_forwarding(procfs: str = "/proc") -> None:
    write_sysctl("net/ipv4/ip_forward", "1", procfs)


def ensure_bridge(name: str, gateway: str, prefixlen: int, mtu: int, procfs: str = "/proc") -> None:
    """Create the bridge with the gateway address unless it exists; IPv6 is
    disabled on it before it comes up (no link-local address)."""
    with RtNetlink() as nl:
        index = _link_index(nl, name)
        if index is None:
            nl.transact([netlink.bridge_create(name, mtu)])
            index = nl.link_indexes(name)[0]
        with contextlib.suppress(OSError):
            write_sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "1", procfs)
        with contextlib.suppress(OSError):  # the address is there already
            nl.transact([netlink.addr_add(index, gateway, prefixlen)])
        nl.transact([netlink.link_set(index, up=True)])


def _link_index(nl: RtNetlink, name: str) -> int | None:
    try:
        return nl.link_indexes(name)[0]
    except OSError as exc:
        if exc.errno == errno.ENODEV:
            return None
        raise


def job_gso_bytes(mode: str, prefix: str) -> int:
    """The IPv4 GSO limit for job veths (0: the kernel's default, 64 KiB).

    A job's TCP sizes its packets by its own veth. A 512 KiB packet routed
    on to a link that takes less is cut into MTU-sized packets in software
    (a stream out of the host then runs at a fraction of its speed), so in
    `auto` job veths get BIG TCP only when every other link that a route
    uses here takes as much."""
    if mode == "off":
        return 0
    if mode == "on":
        return netlink.BIG_TCP_BYTES
    with RtNetlink() as nl:
        links = {link.ifindex: link for link in nl.links()}
        used = nl.route_devices()
    sizes = [
        links[i].gso_ipv4_max
        for i in used
        if i in links and links[i].name != "lo" and not links[i].name.startswith(prefix)
    ]
    if any(size is None for size in sizes):
        return 0  # the kernel has no IPv4 BIG TCP (before 6.3)
    limit = min([netlink.BIG_TCP_BYTES, *(s for s in sizes if s is not None)])
    return limit if limit > netlink.LEGACY_GSO_BYTES else 0


def links_with_prefix(prefix: str) -> list[str]:
    with RtNetlink() as nl:
        names = nl.link_names()
    return sorted(n for n in names if n.startswith(prefix))


def other_links_networks(prefix: str) -> list[tuple[str, str]]:
    """(network, interface name) of every IPv4 address and route of this
    namespace on an interface not starting with `prefix` (not this daemon's)."""
    with RtNetlink() as nl:
        names = {link.ifindex: link.name for link in nl.links()}
        found = nl.ipv4_networks_by_link()
    named = [(net, names.get(index, f"#{index}")) for net, index in found]
    return [(net, name) for net, name in named if not name.startswith(prefix)]


def delete_link(name: str) -> None:
    """Delete a link; one already gone is fine."""
    with RtNetlink() as nl:
        index = _link_index(nl, name)
        if index is None:
            return
        try:
            nl.transact([netlink.link_delete(index)])
        except OSError as exc:
            if exc.errno != errno.ENODEV:
                raise


def host_networks() -> list[str]:
    """The host's IPv4 addresses (/32) and routes, as CIDR strings, for the
    overlap checks of new networks."""
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    out: list[str] = []
    with IPRoute() as ipr:
        for addr in ipr.get_addr(family=2):
            out.append(f"{addr.get('IFA_ADDRESS')}/32")
        for route in ipr.get_routes(family=2, table=254):
            dst = route.get("RTA_DST")
            if dst:
                out.append(f"{dst}/{route['dst_len']}")
    return out
