"""The firewall's second line against forged sources, in throwaway namespaces.

Jobs cannot forge at all (no CAP_NET_RAW or CAP_NET_ADMIN, so only their own
address is local: see tests/integration/test_network_outside.py). Here a
"job" keeps root in its namespace and adds an address outside its network:
what it sends from there must not reach the outside. The outside's own UDP
counters (/proc/PID/net/snmp reads the namespace of PID) tell what arrived.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
from netns_harness import OUTSIDE_ADDR, fork_job, job_result, run_in_new_netns, start_outside

from joblet.network.config import NetworkConfig
from joblet.network.manager import NetworkManager

pytestmark = pytest.mark.privileged
FORGED = "10.99.0.5"  # in no joblet network


def _udp_arrivals(pid: int) -> int:
    """Datagrams that reached the namespace of `pid` (to a closed port, too)."""
    with open(f"/proc/{pid}/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    counts = dict(zip(rows[0][1:], rows[1][1:], strict=True))
    return int(counts["InDatagrams"]) + int(counts["NoPorts"])


def _send(source: str | None, count: int = 5) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if source:
            sock.bind((source, 0))
        for _ in range(count):
            sock.sendto(b"x", (OUTSIDE_ADDR, 9))


def _forger(outside: int) -> int:
    """Five forged datagrams, then five from the job's own address (which
    bound the wait: one path, in order); how many reached the outside."""
    subprocess.run(["ip", "addr", "add", f"{FORGED}/32", "dev", "eth0"], check=True)
    start = _udp_arrivals(outside)
    _send(FORGED)
    _send(None)
    deadline = time.monotonic() + 30
    while _udp_arrivals(outside) - start < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    # The counters cannot tell forged from honest: were the forged ones let
    # through, they would be the first five, the honest ones right behind.
    time.sleep(0.1)
    return _udp_arrivals(outside) - start


def _scenario() -> int:
    outside = start_outside()
    state = tempfile.mkdtemp()
    mgr = NetworkManager(NetworkConfig(dns=("192.0.2.53",)), state, "spoof-daemon")
    mgr.start()
    try:
        plan = mgr.allocate("22222222-bbbb", "bridge")
        return int(job_result(fork_job(plan, lambda: _forger(outside))))
    finally:
        mgr.remove_all()
        shutil.rmtree(state)
        os.kill(outside, 9)
        os.waitpid(outside, 0)


def test_forged_source_does_not_reach_the_outside() -> None:
    assert run_in_new_netns(_scenario) == 5  # the honest ones only
