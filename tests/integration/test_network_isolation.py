"""The firewall between networks, through a real daemon: every probe aims at
a live listener (a job that said "listening" after listen(2) and serves until
the test ends, or the daemon's own gRPC port) and every test has a peer that
is allowed to reach that same listener and does. A probe that is dropped
times out; one that finds nobody listening would be refused instead, so a
dead listener can never pass for a working drop rule.

    bridge 10.201.0.0/24   red 10.203.1.0/24   blue 10.203.2.0/24   isolated /30s
    outside 192.0.2.2 (network_world.py), routed to 10.0.0.0/8 via the uplink;
    169.254.169.254 on the outside's lo for the link-local test

The daemon listens on every address of its namespace (server.address
0.0.0.0), so its port is also on the host side of each job network.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, wait_status
from .netns import in_netns
from .network_world import UPLINK, NetnsDaemon, World, netns_daemon

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
NETWORKS = {"red": "10.203.1.0/24", "blue": "10.203.2.0/24"}
BRIDGE_GATEWAY, RED_GATEWAY = "10.201.0.1", "10.203.1.1"
METADATA = "169.254.169.254"
PORT = 8080
# Long enough for an allowed connection on a loaded host; a dropped SYN
# never gets an answer, so every blocked probe costs this much.
PROBE_TIMEOUT = 5.0
# Says where it listens once listen(2) returned, then answers every
# connection with the job's name (its hostname) until it is stopped.
LISTEN = (
    "import fcntl, socket, struct\n"
    f"s = socket.create_server(('0.0.0.0', {PORT}))\n"
    "own = fcntl.ioctl(s.fileno(), 0x8915, struct.pack('256s', b'eth0'))[20:24]  # SIOCGIFADDR\n"
    "print('listening', socket.inet_ntoa(own), flush=True)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(socket.gethostname().encode()); c.close()\n"
)
# Connects to every ADDRESS:PORT of argv at once ("gw" is the job's default
# gateway); prints JSON {"gw": ..., "results": {target: outcome}}.
PROBE = (
    "import json, signal, socket, struct, sys, threading\n"
    "route = [l.split() for l in open('/proc/net/route')][1:]\n"
    "gw = next(r[2] for r in route if r[1] == '0' * 8)\n"
    "gw = socket.inet_ntoa(struct.pack('<I', int(gw, 16)))\n"
    "results = {}\n"
    "def probe(target):\n"
    "    host, port = target.rsplit(':', 1)\n"
    "    try:\n"
    "        address = (gw if host == 'gw' else host, int(port))\n"
    f"        with socket.create_connection(address, {PROBE_TIMEOUT}) as c:\n"
    "            c.settimeout(1)\n"
    "            try: results[target] = 'reached:' + c.recv(100).decode()\n"
    "            except OSError: results[target] = 'reached:'\n"
    "    except OSError as exc:\n"
    "        results[target] = type(exc).__name__\n"
    "threads = [threading.Thread(target=probe, args=(t,)) for t in sys.argv[1:]]\n"
    "for t in threads: t.start()\n"
    "for t in threads: t.join()\n"
    "print(json.dumps({'gw': gw, 'results': results}), flush=True)\n"
    "signal.pause()  # until stopped: an isolated job's gateway lives as long as the job\n"
)
BLOCKED = "TimeoutError"  # dropped: no answer at all


@pytest.fixture(scope="module")
def fdaemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    if shutil.which("nft") is None:
        pytest.skip("needs nft (apt-get install nftables)")
    sections = {"server": {"address": "0.0.0.0"}}
    with netns_daemon(tmp_path_factory.mktemp("netfirewall"), sections) as running:
        nets = pb_grpc.NetworkServiceStub(running.channel())
        for name, cidr in NETWORKS.items():
            nets.CreateNetwork(pb.CreateNetworkReq(name=name, cidr=cidr))
        # The outside may then open connections towards the job networks:
        # only the firewall stands in the way.
        world(running).outside_ip("route", "add", "10.0.0.0/8", "via", UPLINK[0])
        yield running


def world(d: NetnsDaemon) -> World:
    assert isinstance(d.world, World)
    return d.world


def start(d: NetnsDaemon, script: str, *args: str, **fields: Any) -> str:
    req = pb.RunJobRequest(command="python3", args=["-c", script, *args], **fields)
    return str(d.jobs().RunJob(req).jobUuid)


def output(d: NetnsDaemon, job_id: str) -> str:
    # The output so far: a listener's log would be followed until it ends.
    chunks = d.jobs().GetJobLogs(pb.GetJobLogsReq(uuid=job_id, noFollow=True), timeout=30)
    return b"".join(c.payload for c in chunks).decode()


def first_line(d: NetnsDaemon, job_id: str, prefix: str) -> str:
    """The job's first output line starting with `prefix`, once it says it;
    the job must still run then."""
    deadline = time.monotonic() + 60
    while True:
        found = [line for line in output(d, job_id).splitlines() if line.startswith(prefix)]
        if found:
            return found[0]
        status = d.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status
        assert status not in FINAL, f"job {job_id} ended {status}: {output(d, job_id)}"
        assert time.monotonic() < deadline, f"job {job_id} never said {prefix!r}"
        time.sleep(0.05)


def listener(d: NetnsDaemon, name: str, network: str) -> tuple[str, str]:
    """A job proven to listen on PORT; (job id, its address)."""
    job_id = start(d, LISTEN, name=name, network=network)
    return job_id, first_line(d, job_id, "listening ").split()[1]


@contextlib.contextmanager
def probes(d: NetnsDaemon, plan: dict[str, list[str]]) -> Iterator[dict[str, dict[str, Any]]]:
    """Probes from new jobs on several networks at the same time (so that the
    blocked ones' timeouts overlap): {network: {"gw": ..., "results": ...}}.
    The probing jobs, and so their gateways, live until the block ends."""
    ids = [
        (network, start(d, PROBE, *targets, network=network)) for network, targets in plan.items()
    ]
    try:
        yield {net: json.loads(first_line(d, job_id, "{")) for net, job_id in ids}
    finally:
        stop(d, *(job_id for _, job_id in ids))


def connect(address: str, port: int) -> str:
    """The same probe as PROBE's, from the test process (in some namespace)."""
    try:
        with socket.create_connection((address, port), PROBE_TIMEOUT) as conn:
            conn.settimeout(1)
            try:
                return "reached:" + conn.recv(100).decode()
            except OSError:
                return "reached:"
    except OSError as exc:
        return type(exc).__name__


def still_listening(d: NetnsDaemon, *job_ids: str) -> None:
    for job_id in job_ids:
        assert d.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status == "RUNNING"


def stop(d: NetnsDaemon, *job_ids: str) -> None:
    for job_id in job_ids:
        d.jobs().StopJob(pb.StopJobReq(uuid=job_id))
    for job_id in job_ids:
        wait_status(d.jobs(), job_id, FINAL, timeout=30)


def test_custom_network_is_closed_to_another_custom_network(fdaemon: NetnsDaemon) -> None:
    server, address = listener(fdaemon, "red-db", "red")
    try:
        target = f"{address}:{PORT}"
        with probes(fdaemon, {"red": [target], "blue": [target]}) as seen:
            assert seen["red"]["results"][target] == "reached:red-db"  # its own network may
            assert seen["blue"]["results"][target] == BLOCKED
        still_listening(fdaemon, server)
    finally:
        stop(fdaemon, server)


def test_bridge_cannot_reach_a_custom_network(fdaemon: NetnsDaemon) -> None:
    server, address = listener(fdaemon, "red-web", "red")
    try:
        target = f"{address}:{PORT}"
        with probes(fdaemon, {"red": [target], "bridge": [target]}) as seen:
            assert seen["red"]["results"][target] == "reached:red-web"
            assert seen["bridge"]["results"][target] == BLOCKED
        still_listening(fdaemon, server)
    finally:
        stop(fdaemon, server)


def test_custom_network_cannot_reach_the_bridge(fdaemon: NetnsDaemon) -> None:
    server, address = listener(fdaemon, "br-web", "bridge")
    try:
        target = f"{address}:{PORT}"
        with probes(fdaemon, {"bridge": [target], "red": [target]}) as seen:
            assert seen["bridge"]["results"][target] == "reached:br-web"
            assert seen["red"]["results"][target] == BLOCKED
        still_listening(fdaemon, server)
    finally:
        stop(fdaemon, server)


def test_isolated_jobs_reach_no_other_job_and_none_reach_them(fdaemon: NetnsDaemon) -> None:
    started = [
        listener(fdaemon, "br-iso", "bridge"),
        listener(fdaemon, "red-iso", "red"),
        listener(fdaemon, "iso-a", "isolated"),
    ]
    try:
        (_, bridge_addr), (_, red_addr), (_, iso_addr) = started
        targets = [f"{a}:{PORT}" for a in (bridge_addr, red_addr, iso_addr)]
        # The last probe comes from a second isolated job.
        plan = {"bridge": targets, "red": targets[1:], "isolated": targets}
        with probes(fdaemon, plan) as seen:
            assert seen["bridge"]["results"][targets[0]] == "reached:br-iso"
            assert seen["red"]["results"][targets[1]] == "reached:red-iso"
            # The daemon's host reaches an isolated job: its listener is live.
            reach_iso = in_netns(fdaemon.world.netns, lambda: connect(iso_addr, PORT))
            assert reach_iso == "reached:iso-a"
            assert seen["isolated"]["results"] == dict.fromkeys(targets, BLOCKED)
            # ... and nobody else's jobs reach an isolated one.
            assert seen["bridge"]["results"][targets[2]] == BLOCKED
            assert seen["red"]["results"][targets[2]] == BLOCKED
        still_listening(fdaemon, *(job_id for job_id, _ in started))
    finally:
        stop(fdaemon, *(job_id for job_id, _ in started))


def test_outside_cannot_open_a_connection_to_a_job(fdaemon: NetnsDaemon) -> None:
    server, address = listener(fdaemon, "br-out", "bridge")
    try:
        target = f"{address}:{PORT}"
        with probes(fdaemon, {"bridge": [target]}) as seen:
            assert seen["bridge"]["results"][target] == "reached:br-out"
        assert world(fdaemon).in_outside(lambda: connect(address, PORT)) == BLOCKED
        still_listening(fdaemon, server)
    finally:
        stop(fdaemon, server)


def test_jobs_cannot_reach_the_daemon_on_its_host_addresses(fdaemon: NetnsDaemon) -> None:
    """The daemon's own gRPC port, on the host side of each job's network
    (its gateway), on another network's gateway and on the uplink."""
    port = fdaemon.port
    others = [f"{a}:{port}" for a in (UPLINK[0], BRIDGE_GATEWAY, RED_GATEWAY)]
    targets = [f"gw:{port}", *others]
    with probes(fdaemon, {"bridge": targets, "red": targets, "isolated": targets}) as seen:
        for network, found in seen.items():
            assert found["results"] == dict.fromkeys(targets, BLOCKED), network
        # The same port on the same addresses answers whoever may ask: the
        # outside (not a job) and the daemon's namespace itself.
        gateways = {found["gw"] for found in seen.values()}
        assert gateways >= {BRIDGE_GATEWAY, RED_GATEWAY} and len(gateways) == 3
        for address in {UPLINK[0], *gateways}:
            from_outside = world(fdaemon).in_outside(partial(connect, address, port))
            from_daemon = in_netns(fdaemon.world.netns, partial(connect, address, port))
            assert (from_outside, from_daemon) == ("reached:", "reached:"), address


@contextlib.contextmanager
def outside_listener(w: World, address: str, answer: bytes) -> Iterator[None]:
    """A TCP listener on `address`:PORT in the outside, live until the block ends."""
    server = w.in_outside(lambda: socket.create_server((address, PORT)))

    def serve() -> None:
        with contextlib.suppress(OSError):  # closed at the end
            while True:
                conn, _ = server.accept()
                with conn:
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # wakes the accept (close alone would not)
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(10)


def test_jobs_cannot_reach_link_local_addresses(fdaemon: NetnsDaemon) -> None:
    """169.254.0.0/16 (where clouds serve instance metadata) stays out of every
    job's reach, even when the daemon's host routes it."""
    w, target = world(fdaemon), f"{METADATA}:{PORT}"
    w.ip("route", "add", "169.254.0.0/16", "via", UPLINK[1])
    w.outside_ip("addr", "add", f"{METADATA}/32", "dev", "lo")
    try:
        with outside_listener(w, METADATA, b"metadata"):
            plan = {"bridge": [target], "red": [target], "isolated": [target]}
            with probes(fdaemon, plan) as seen:
                for network, found in seen.items():
                    assert found["results"] == {target: BLOCKED}, network
                # The daemon's host itself may: the listener is live.
                assert in_netns(w.netns, partial(connect, METADATA, PORT)) == "reached:metadata"
    finally:
        w.outside_ip("addr", "del", f"{METADATA}/32", "dev", "lo")
        w.ip("route", "del", "169.254.0.0/16")
