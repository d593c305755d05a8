"""Host-side network plumbing of the daemon: bridges, forwarding, leftovers.

Runs in the daemon's network namespace (a test puts the whole daemon in one
of its own). Uses pyroute2 for netlink and /proc/sys for sysctls.
"""

from __future__ import annotations

import contextlib
import errno
import os

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]


def write_sysctl(path: str, value: str, procfs: str = "/proc") -> None:
    with open(os.path.join(procfs, "sys", path), "w") as f:
        f.write(value)


def enable_forwarding(procfs: str = "/proc") -> None:
    write_sysctl("net/ipv4/ip_forward", "1", procfs)


def ensure_bridge(name: str, gateway: str, prefixlen: int, mtu: int, procfs: str = "/proc") -> None:
    """Create the bridge with the gateway address unless it exists; IPv6 is
    disabled on it before it comes up (no link-local address)."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            found = ipr.link_lookup(ifname=name)
        index = found[0]
        with contextlib.suppress(OSError):
            write_sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "1", procfs)
        with contextlib.suppress(NetlinkError):
            ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
        ipr.link("set", index=index, state="up")


def links_with_prefix(prefix: str) -> list[str]:
    with IPRoute() as ipr:
        names = [link.get("ifname") for link in ipr.get_links()]
    return sorted(n for n in names if isinstance(n, str) and n.startswith(prefix))


def delete_link(name: str) -> None:
    """Delete a link; one already gone is fine."""
    with IPRoute() as ipr:
        try:
            found = ipr.link_lookup(ifname=name)
            if found:
                ipr.link("del", index=found[0])
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise


def host_networks() -> list[str]:
    """The host's IPv4 addresses (/32) and routes, as CIDR strings, for the
    overlap checks of new networks."""
    out: list[str] = []
    with IPRoute() as ipr:
        for addr in ipr.get_addr(family=2):
            out.append(f"{addr.get('IFA_ADDRESS')}/32")
        for route in ipr.get_routes(family=2, table=254):
            dst = route.get("RTA_DST")
            if dst:
                out.append(f"{dst}/{route['dst_len']}")
    return out
