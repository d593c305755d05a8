"""network.bigTcp `auto` against real links and routes, in a throwaway netns."""

from __future__ import annotations

import socket
import subprocess

import pytest
from netns_harness import run_in_new_netns

from joblet.network import hostnet
from joblet.network import netlink as nl

pytestmark = pytest.mark.privileged
BIG = nl.BIG_TCP_BYTES


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def _scenario() -> dict[str, int | None]:
    out: dict[str, int | None] = {"alone": hostnet.job_gso_bytes("auto", "jx")}
    # An uplink with the kernel's default limit (64 KiB) carries a route.
    _ip("link", "add", "up0", "type", "veth", "peer", "name", "up1")
    _ip("addr", "add", "192.0.2.1/24", "dev", "up0")
    _ip("link", "set", "up0", "up")
    _ip("link", "set", "up1", "up")
    out["uplink_64k"] = hostnet.job_gso_bytes("auto", "jx")
    out["on"] = hostnet.job_gso_bytes("on", "jx")
    out["off"] = hostnet.job_gso_bytes("off", "jx")
    # The daemon's own links (its prefix) never count.
    _ip("link", "add", "jxb1", "type", "bridge")
    _ip("addr", "add", "10.9.0.1/24", "dev", "jxb1")
    _ip("link", "set", "jxb1", "up")
    with nl.RtNetlink() as rt:
        rt.transact([nl.link_set(socket.if_nametoindex("up0"), gso_bytes=BIG)])
        out["reported"] = next(x.gso_ipv4_max for x in rt.links() if x.name == "up0")
    out["uplink_big"] = hostnet.job_gso_bytes("auto", "jx")
    return out


def test_auto_follows_the_links_routes_use() -> None:
    got = run_in_new_netns(_scenario)
    assert got["on"] == BIG and got["off"] == 0
    assert got["uplink_64k"] == 0  # a job's 512 KiB packets would be cut up in software
    if got["reported"] is None:
        # Before 6.3 the kernel has no IPv4 BIG TCP: auto stays off.
        assert got["uplink_big"] == 0
        return
    assert got["alone"] == BIG  # nothing but lo: nothing leaves
    assert got["reported"] == BIG
    assert got["uplink_big"] == BIG
