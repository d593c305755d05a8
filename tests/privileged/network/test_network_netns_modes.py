"""Bridge, isolated and custom networks end to end in throwaway namespaces:
the manager's bridges and nft table, jobs built by jobside as the launcher
builds them, an 'outside' namespace with a TCP server."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
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


ANY = "0.0.0.0"
HOST_PORT = 7100  # a listener of the daemon's host, on all its addresses
BLOCKED = "TimeoutError"  # dropped; a missing listener would be refused


def _retry_connect(address: str, port: int) -> str:
    deadline = time.monotonic() + 5
    while True:
        got = connect(address, port)
        if got.startswith("ok") or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def _blocked_connect(address: str, port: int) -> str:
    # Long enough that an allowed connection would get through on a loaded host.
    return connect(address, port, timeout=2.0)


def _listening(start: Callable[[int], Any]) -> tuple[int, int]:
    """start(ready_fd) in a fork, once it said it listens: (pid, read fd)."""
    ready_r, ready_w = os.pipe()
    job = start(ready_w)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"r"
    os.close(ready_r)
    return job  # type: ignore[no-any-return]


def _server_job(plan: dict[str, Any]) -> tuple[int, int]:
    """A job listening on 7000 (all its addresses), live until killed."""
    return _listening(lambda ready: fork_job(plan, lambda: serve_peer_address(ANY, 7000, ready)))


def _host_server() -> tuple[int, int]:
    """The host's own listener, in the namespace the manager runs in."""

    def start(ready: int) -> tuple[int, int]:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                serve_peer_address(ANY, HOST_PORT, ready)
            finally:
                os._exit(0)
        os.close(write_end)
        return pid, read_end

    return _listening(start)


def _client(plan: dict[str, Any], *targets: tuple[str, int, bool]) -> list[str]:
    """What a job on `plan` got from each target (True: retried until it
    answers); its last entry is what the host's own process got from
    HOST_PORT on the job's gateway, asked while the job (and so an isolated
    job's gateway) still exists."""
    probed_r, probed_w = os.pipe()
    go_r, go_w = os.pipe()

    def body() -> list[str]:
        got = [(_retry_connect if ok else _blocked_connect)(a, p) for a, p, ok in targets]
        os.write(probed_w, b"p")
        os.read(go_r, 1)
        return got

    job = fork_job(plan, body)
    os.close(probed_w)
    os.close(go_r)
    os.read(probed_r, 1)  # empty when the job died: job_result says why
    from_host = _retry_connect(plan["gateway"], HOST_PORT)
    with contextlib.suppress(BrokenPipeError):
        os.write(go_w, b"g")
    os.close(go_w)
    os.close(probed_r)
    return [*job_result(job), from_host]


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
    mgr.create_network("netb", "10.78.0.0/24")
    host = _host_server()
    # Live listeners, one per kind of network; each has a peer that may reach it.
    b1 = mgr.allocate("11111111-aaaa", "bridge", "one")
    a2 = mgr.allocate("66666666-aaaa", "neta", "db")
    iso2 = mgr.allocate("44444444-aaaa", "isolated", "iso2")
    servers = [_server_job(b1), _server_job(a2), _server_job(iso2)]
    listeners = [(b1["address"], 7000), (a2["address"], 7000), (iso2["address"], 7000)]
    b2 = mgr.allocate("22222222-aaaa", "", "two")
    iso1 = mgr.allocate("33333333-aaaa", "isolated", "iso")
    a1 = mgr.allocate("55555555-aaaa", "neta", "web")
    c1 = mgr.allocate("77777777-aaaa", "netb", "other")
    out["addresses"] = {k: p["address"] for k, p in (("b2", b2), ("a1", a1), ("iso1", iso1))}
    out["iso_addresses"] = [iso1["address"], iso2["address"]]

    def host_side(plan: dict[str, Any]) -> list[tuple[str, int, bool]]:
        return [(plan["gateway"], HOST_PORT, False), (UPLINK[0], HOST_PORT, False)]

    def towards(allowed: set[int]) -> list[tuple[str, int, bool]]:
        return [(a, p, i in allowed) for i, (a, p) in enumerate(listeners)]

    out["bridge"] = _client(b2, (OUTSIDE_ADDR, 8080, True), *towards({0}), *host_side(b2))
    out["isolated"] = _client(iso1, (OUTSIDE_ADDR, 8080, True), *towards(set()), *host_side(iso1))
    out["custom"] = _client(a1, (OUTSIDE_ADDR, 8080, True), *towards({1}), *host_side(a1))
    out["other_custom"] = _client(c1, (OUTSIDE_ADDR, 8080, True), *towards(set()))
    # The host reaches its listener on the uplink too, and the isolated
    # listener: nothing the jobs were refused is dead.
    out["host"] = _retry_connect(UPLINK[0], HOST_PORT)
    out["host_to_isolated"] = _retry_connect(iso2["address"], 7000)
    out["hosts"] = Path(a1["hosts_file"]).read_text()
    out["ipv6"] = job_result(fork_job(b2, _ipv6_addresses))
    for job in (*servers, host):
        kill(job)
    for job_id in ("1111", "6666", "4444", "2222", "3333", "5555", "7777"):
        mgr.release(job_id * 2 + "-aaaa")
    out["hosts_after"] = Path(a1["hosts_file"]).read_text()
    out["links_after"] = _wait_links_gone(mgr)
    mgr.remove_network("neta")
    mgr.remove_network("netb")
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


@pytest.mark.slow  # over 15 s: make test-all runs it
def test_modes_firewall_and_cleanup() -> None:
    out = run_in_new_netns(_scenario)
    own, nat, host = out["addresses"], f"ok:{UPLINK[0]}", "ok:"
    # Each job's last entry: the host's own process reaches HOST_PORT on the
    # job's gateway, where the job itself was refused.
    # bridge: reaches the outside through NAT (it sees our uplink address) and
    # the other bridge job directly; no other network, no host address.
    assert out["bridge"][:-1] == [nat, f"ok:{own['b2']}", *[BLOCKED] * 4]
    # isolated: the outside yes; any other job (another isolated one too),
    # its gateway or another host address no.
    assert out["isolated"][:-1] == [nat, *[BLOCKED] * 5]
    assert len(set(out["iso_addresses"])) == 2
    # custom: the outside and its own network; not the bridge, another
    # custom network, an isolated job or the host.
    assert out["custom"][:-1] == [nat, BLOCKED, f"ok:{own['a1']}", *[BLOCKED] * 3]
    assert out["other_custom"][:-1] == [nat, *[BLOCKED] * 3]
    for got in (out["bridge"], out["isolated"], out["custom"], out["other_custom"]):
        assert got[-1].startswith(host), got
    assert out["host"].startswith(host)
    assert out["host_to_isolated"].startswith("ok:")
    assert "10.77.0.3\tweb job-55555555" in out["hosts"]
    assert "web" not in out["hosts_after"]
    assert out["ipv6"] == ["00000000000000000000000000000001"]  # only ::1
    bridges = [n for n in out["links_after"] if n[4] == "b"]
    assert len(out["links_after"]) == len(bridges) == 3  # bridge, neta, netb; no veth
    assert out["links_final"] == []
