"""Bridge, isolated and custom networks end to end in throwaway namespaces:
the manager's bridges and nft table, jobs built by jobside as the launcher
builds them, an 'outside' namespace with a TCP server."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from netns_harness import (
    OUTSIDE_ADDR,
    UPLINK,
    connect,
    fork_job,
    job_result,
    kill,
    run_in_new_netns,
    serve_peer_address,
    start_outside,
)

from joblet.network.config import NetworkConfig
from joblet.network.manager import NetworkManager

pytestmark = pytest.mark.privileged


def _retry_connect(address: str, port: int) -> str:
    deadline = time.monotonic() + 3
    while True:
        got = connect(address, port)
        if got.startswith("ok") or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def _server_job(plan: dict[str, Any]) -> tuple[int, int]:
    ready_r, ready_w = os.pipe()
    job = fork_job(plan, lambda: serve_peer_address("0.0.0.0", 7000, ready_w))
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"r"
    os.close(ready_r)
    return job


def _client(plan: dict[str, Any], *targets: tuple[str, int, bool]) -> list[str]:
    def body() -> list[str]:
        return [(_retry_connect if retry else connect)(a, p) for a, p, retry in targets]

    return list(job_result(fork_job(plan, body)))


def _ipv6_addresses() -> list[str]:
    with open("/proc/net/if_inet6") as f:
        return [line.split()[0] for line in f]


def _scenario() -> dict[str, Any]:
    out: dict[str, Any] = {}
    outside = start_outside()
    state = tempfile.mkdtemp()
    mgr = NetworkManager(NetworkConfig(dns=("192.0.2.53",)), state, "test-daemon")
    mgr.start()
    mgr.create_network("neta", "10.77.0.0/24")
    b1 = mgr.allocate("11111111-aaaa", "bridge", "one")
    server = _server_job(b1)
    b2 = mgr.allocate("22222222-aaaa", "", "two")
    out["bridge"] = _client(b2, (OUTSIDE_ADDR, 8080, True), (b1["address"], 7000, True))
    iso1 = mgr.allocate("33333333-aaaa", "isolated", "iso")
    iso2 = mgr.allocate("44444444-aaaa", "isolated", "iso2")
    out["iso_addresses"] = [iso1["address"], iso2["address"]]
    out["isolated"] = _client(iso1, (OUTSIDE_ADDR, 8080, True), (b1["address"], 7000, False),
                              (iso1["gateway"], 22, False), (UPLINK[0], 22, False))  # fmt: skip
    a1 = mgr.allocate("55555555-aaaa", "neta", "web")
    out["custom"] = _client(a1, (OUTSIDE_ADDR, 8080, True), (b1["address"], 7000, False))
    out["hosts"] = Path(a1["hosts_file"]).read_text()
    out["ipv6"] = job_result(fork_job(b2, _ipv6_addresses))
    kill(server)
    for job_id in (
        "11111111-aaaa",
        "22222222-aaaa",
        "33333333-aaaa",
        "44444444-aaaa",
        "55555555-aaaa",
    ):
        mgr.release(job_id)
    out["hosts_after"] = Path(a1["hosts_file"]).read_text()
    out["links_after"] = _wait_links_gone(mgr)
    mgr.remove_network("neta")
    mgr.remove_all()
    out["links_final"] = _wait_links_gone(mgr)
    os.kill(outside, 9)
    os.waitpid(outside, 0)
    shutil.rmtree(state)
    return out


def _wait_links_gone(mgr: NetworkManager) -> list[str]:
    from joblet.network import hostnet

    # The kernel removes a veth whose peer's namespace died asynchronously;
    # on a loaded host that takes longer than on an idle one.
    deadline = time.monotonic() + 15
    while True:
        veths = [n for n in hostnet.links_with_prefix(mgr.prefix) if n[4] in "vi"]
        if not veths or time.monotonic() > deadline:
            return hostnet.links_with_prefix(mgr.prefix)
        time.sleep(0.05)


def test_modes_firewall_and_cleanup() -> None:
    out = run_in_new_netns(_scenario)
    # bridge: reaches the outside through NAT (it sees our uplink address) and
    # the other bridge job directly.
    assert out["bridge"][0] == f"ok:{UPLINK[0]}"
    assert out["bridge"][1].startswith("ok:172.20.")
    # isolated: outside yes; another job, the gateway (host) or host addresses no.
    assert out["isolated"][0] == f"ok:{UPLINK[0]}"
    assert all(
        r in ("TimeoutError", "ConnectionRefusedError") and r != "ok" for r in out["isolated"][1:]
    )
    assert out["isolated"][1] == "TimeoutError"  # dropped, not refused
    assert out["isolated"][2] == "TimeoutError"
    assert len(set(out["iso_addresses"])) == 2
    # a custom network reaches the outside but not the default bridge
    assert out["custom"] == [f"ok:{UPLINK[0]}", "TimeoutError"]
    assert "10.77.0.2\tweb job-55555555" in out["hosts"]
    assert "web" not in out["hosts_after"]
    assert out["ipv6"] == ["00000000000000000000000000000001"]  # only ::1
    bridges = [n for n in out["links_after"] if n[4] == "b"]
    assert len(out["links_after"]) == len(bridges) == 2  # bridge + neta, no veth
    assert out["links_final"] == []
