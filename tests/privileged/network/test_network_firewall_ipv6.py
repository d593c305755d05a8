"""The firewall drops IPv6 from jobs, in throwaway namespaces.

Jobs get no IPv6 address (IPv6 is disabled on their interfaces and on the
bridges), and without CAP_NET_ADMIN they cannot change that. Here a "job"
keeps root in its namespace and turns IPv6 on, and so do the daemon's side
and the outside, with routes both ways: what the job sends must still not be
forwarded. The outside's own UDP6 counters tell what arrived.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
from netns_harness import fork_job, job_result, run_in_new_netns, start_outside

from joblet.network import hostnet
from joblet.network.config import NetworkConfig
from joblet.network.manager import NetworkManager

pytestmark = pytest.mark.privileged

JOB_NET = ("fd00:99::1", "fd00:99::2")  # (bridge, job)
UPLINK6 = ("fd00:98::1", "fd00:98::2")  # (daemon side, outside)
# Set on the bridge: one without a fixed address takes its first port's.
BRIDGE_MAC = "02:00:00:00:99:01"


def _ip(*args: str, pid: int | None = None) -> None:
    where = ["nsenter", f"--net=/proc/{pid}/ns/net"] if pid else []
    subprocess.run([*where, "ip", *args], check=True, capture_output=True)


def _enable_ipv6(iface: str) -> None:
    with open(f"/proc/sys/net/ipv6/conf/{iface}/disable_ipv6", "w") as f:
        f.write("0")


def _udp6_arrivals(pid: int) -> int:
    """Datagrams over IPv6 that reached the namespace of `pid` (closed ports too)."""
    with open(f"/proc/{pid}/net/snmp6") as f:
        counts = dict(line.split() for line in f if line.strip())
    return int(counts["Udp6InDatagrams"]) + int(counts["Udp6NoPorts"])


def _job_sends() -> str:
    """In the job: IPv6 on, an address, a route and the gateway's neighbour
    entry (the firewall's input chain drops neighbour solicitations to the
    bridge), then five datagrams out."""
    _enable_ipv6("eth0")
    _ip("-6", "addr", "add", f"{JOB_NET[1]}/64", "dev", "eth0", "nodad")
    _ip("-6", "neigh", "add", JOB_NET[0], "lladdr", BRIDGE_MAC, "dev", "eth0")
    _ip("-6", "route", "add", "default", "via", JOB_NET[0])
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        for _ in range(5):
            sock.sendto(b"x", (UPLINK6[1], 9))
    return "sent"


def _open_ipv6_path(outside: int, bridge: str) -> None:
    """IPv6 between the outside and the bridge, forwarded by the daemon's side."""
    _ip("-6", "addr", "add", f"{UPLINK6[1]}/64", "dev", "out0", "nodad", pid=outside)
    _ip("-6", "route", "add", "fd00:99::/64", "via", UPLINK6[0], pid=outside)
    for iface in ("uplink0", bridge):
        _enable_ipv6(iface)
    _ip("-6", "addr", "add", f"{UPLINK6[0]}/64", "dev", "uplink0", "nodad")
    _ip("-6", "addr", "add", f"{JOB_NET[0]}/64", "dev", bridge, "nodad")
    _ip("link", "set", "dev", bridge, "address", BRIDGE_MAC)
    with open("/proc/sys/net/ipv6/conf/all/forwarding", "w") as f:
        f.write("1")


def _forwarded_from_the_job(mgr: NetworkManager, outside: int) -> int:
    plan = mgr.allocate("33333333-cccc", "bridge")
    bridges = [n for n in hostnet.links_with_prefix(mgr.prefix) if n[4] == "b"]
    assert len(bridges) == 1, bridges
    _open_ipv6_path(outside, bridges[0])
    # The path works: the daemon's side reaches the outside over IPv6.
    start = _udp6_arrivals(outside)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", (UPLINK6[1], 9))
    deadline = time.monotonic() + 10
    while _udp6_arrivals(outside) == start and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _udp6_arrivals(outside) == start + 1, "no IPv6 path to the outside at all"
    start = _udp6_arrivals(outside)
    assert job_result(fork_job(plan, _job_sends)) == "sent"
    # Were they forwarded, they would arrive within a moment on this one path.
    deadline = time.monotonic() + 2
    while _udp6_arrivals(outside) == start and time.monotonic() < deadline:
        time.sleep(0.05)
    return _udp6_arrivals(outside) - start


def _scenario() -> int:
    outside = start_outside()
    state = tempfile.mkdtemp()
    mgr = NetworkManager(NetworkConfig(dns=("192.0.2.53",)), state, "ipv6-daemon")
    mgr.start()
    try:
        return _forwarded_from_the_job(mgr, outside)
    finally:
        mgr.remove_all()
        shutil.rmtree(state)
        os.kill(outside, 9)
        os.waitpid(outside, 0)


def test_ipv6_from_a_job_is_not_forwarded() -> None:
    assert run_in_new_netns(_scenario) == 0
