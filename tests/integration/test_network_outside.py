"""A daemon in a namespace of the test's own, against the test's "outside":
NAT and DNS for bridge jobs, no spoofing, custom network refusals and
exhaustion through gRPC. See network_world.py for the wiring."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, wait_status
from .network_world import (
    DNS_ADDR,
    OUTSIDE_ADDR,
    OUTSIDE_NAME,
    UPLINK,
    NetnsDaemon,
    netns_daemon,
)

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
NAMESERVER_2 = "10.217.0.53"
# Resolve the outside's name, connect to it, print the address and what the
# outside saw as our address.
RESOLVE_AND_CONNECT = (
    "import socket\n"
    f"address = socket.gethostbyname('{OUTSIDE_NAME}')\n"
    "with socket.create_connection((address, 8080), timeout=5) as c:\n"
    "    print(address, c.recv(100).decode())\n"
)
# Every way a root job might send from an address not its own (FORGED: another
# address of its own network); each line says what happened. A plain
# datagram goes first, so that the outside has something to show, and a last
# one after all attempts: once it arrived, any forged one would have too.
SPOOF = (
    "import socket, struct, subprocess\n"
    "probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); probe.connect((OUT, 9))\n"
    "own = probe.getsockname()[0]\n"
    "FORGED = own.rsplit('.', 1)[0] + '.200'\n"
    "def attempt(name, fn):\n"
    "    try:\n"
    "        fn(); print(name, 'sent')\n"
    "    except OSError as exc:\n"
    "        print(name, type(exc).__name__)\n"
    "def plain(payload=b'plain'):\n"
    "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(payload, (OUT, 9999))\n"
    "def icmp_echo():  # ping without CAP_NET_RAW: an ICMP datagram socket\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)\n"
    "    s.settimeout(2); s.sendto(b'\\x08\\0\\0\\0\\0\\0\\0\\1', (OUT, 0)); s.recv(64)\n"
    "def raw():\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)\n"
    "    udp = struct.pack('!HHHH', 4321, 9999, 11, 0) + b'raw'\n"
    "    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,\n"
    "                     socket.inet_aton(FORGED), socket.inet_aton(OUT))\n"
    "    s.sendto(ip + udp, (OUT, 0))\n"
    "def packet():\n"
    "    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))\n"
    "def freebind():\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "    s.setsockopt(socket.IPPROTO_IP, 15, 1)  # IP_FREEBIND\n"
    "    s.bind((FORGED, 0)); s.sendto(b'freebind', (OUT, 9999))\n"
    "def add_address():\n"
    "    r = subprocess.run(['ip', 'addr', 'add', FORGED + '/32', 'dev', 'eth0'],\n"
    "                       capture_output=True)\n"
    "    if r.returncode: raise PermissionError(r.stderr)\n"
    "for name, fn in [('plain', plain), ('icmp_echo', icmp_echo), ('raw', raw),\n"
    "                 ('packet', packet), ('freebind', freebind), ('add_address', add_address)]:\n"
    "    attempt(name, fn)\n"
    "plain(b'last')\n"
)


@pytest.fixture(scope="module")
def ndaemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    if shutil.which("nft") is None:
        pytest.skip("needs nft (apt-get install nftables)")
    # A second, private nameserver: no custom network may cover it.
    dns = {"network": {"dns": [DNS_ADDR, NAMESERVER_2]}}
    with netns_daemon(tmp_path_factory.mktemp("netns"), dns) as running:
        yield running


def run(d: NetnsDaemon, command: str, *args: str, **fields: Any) -> str:
    req = pb.RunJobRequest(command=command, args=list(args), **fields)
    return str(d.jobs().RunJob(req).jobUuid)


def finish(d: NetnsDaemon, job_id: str) -> tuple[str, str]:
    """Wait for the job's end; (status, output)."""
    status = wait_status(d.jobs(), job_id, FINAL, timeout=30).status
    chunks = d.jobs().GetJobLogs(pb.GetJobLogsReq(uuid=job_id))
    return status, b"".join(c.payload for c in chunks).decode()


def networks(d: NetnsDaemon) -> pb_grpc.NetworkServiceStub:
    return pb_grpc.NetworkServiceStub(d.channel())


def test_bridge_job_resolves_via_dns_and_reaches_outside_through_nat(ndaemon: NetnsDaemon) -> None:
    status, out = finish(ndaemon, run(ndaemon, "python3", "-c", RESOLVE_AND_CONNECT))
    assert status == "COMPLETED", out
    # The name came from the outside's DNS responder; the outside saw the
    # daemon's uplink address (masquerade), not the job's bridge address.
    assert out.split() == [OUTSIDE_ADDR, UPLINK[0]]
    assert [UPLINK[0], OUTSIDE_NAME] in ndaemon.world.report()["dns"]


def test_job_cannot_send_from_an_address_not_its_own(ndaemon: NetnsDaemon) -> None:
    script = f"OUT = {OUTSIDE_ADDR!r}\n" + SPOOF
    status, out = finish(ndaemon, run(ndaemon, "python3", "-c", script))
    assert status == "COMPLETED", out
    results = dict(line.split(maxsplit=1) for line in out.splitlines())
    assert results["plain"] == results["icmp_echo"] == "sent"
    # The last datagram took the same path as any forged one, after it.
    deadline = time.monotonic() + 30
    while [UPLINK[0], "last"] not in (received := ndaemon.world.report()["udp"]):
        assert time.monotonic() < deadline, received
        time.sleep(0.05)
    assert [UPLINK[0], "plain"] in received
    assert {payload for _, payload in received} == {"plain", "last"}, received
    assert results["raw"] == results["packet"] == "PermissionError"  # no CAP_NET_RAW
    assert results["freebind"] != "sent"  # the kernel refuses a non-local source
    assert results["add_address"] == "PermissionError"  # no CAP_NET_ADMIN


@pytest.mark.parametrize(
    ("name", "cidr", "reason"),
    [
        ("ipv6", "fd00:1::/64", "IPv6 networks are not supported yet"),
        ("public", "8.8.8.0/24", "RFC 1918"),
        ("testnet", "192.0.2.0/24", "RFC 1918"),  # the uplink's, and public anyway
        ("hostbits", "10.210.0.1/24", "must be a network address"),
        ("nocidr", "10.210.0.0", "must be a network address with a prefix"),
        ("toobig", "10.0.0.0/15", "/16 to /29"),
        ("toosmall", "10.210.0.0/30", "/16 to /29"),
        ("../etc", "10.210.0.0/24", "must match"),
        ("a" * 33, "10.210.0.0/24", "must match"),
        ("Upper", "10.210.0.0/24", "must match"),
        ("bridge", "10.210.0.0/24", "built in"),
    ],
)
def test_bad_custom_network_refused(
    ndaemon: NetnsDaemon, name: str, cidr: str, reason: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        networks(ndaemon).CreateNetwork(pb.CreateNetworkReq(name=name, cidr=cidr))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert reason in (err.value.details() or ""), err.value.details()


def test_overlapping_networks_refused(ndaemon: NetnsDaemon) -> None:
    nets = networks(ndaemon)
    bridge_cidr = next(n.cidr for n in nets.ListNetworks(pb.EmptyRequest()).networks)
    nets.CreateNetwork(pb.CreateNetworkReq(name="ov", cidr="10.211.0.0/24"))
    ndaemon.world.ip("route", "add", "10.216.0.0/16", "via", UPLINK[1])  # a host route
    try:
        for name, cidr in [
            ("ov2", "10.211.0.128/25"),  # inside a custom network
            ("ov3", "10.211.0.0/16"),  # around it
            ("ov4", bridge_cidr),  # the default bridge
            ("ov5", "10.202.0.0/16"),  # around the isolated pool (10.202.N.0/24)
            ("ov6", "10.216.5.0/24"),  # inside a route of the daemon's host
            ("ov7", "10.217.0.0/24"),  # around a nameserver of the jobs
        ]:
            with pytest.raises(grpc.RpcError) as err:
                nets.CreateNetwork(pb.CreateNetworkReq(name=name, cidr=cidr))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, name
            assert "overlaps" in (err.value.details() or ""), name
        with pytest.raises(grpc.RpcError) as err:
            nets.CreateNetwork(pb.CreateNetworkReq(name="ov", cidr="10.212.0.0/24"))
        assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS
    finally:
        nets.RemoveNetwork(pb.RemoveNetworkReq(name="ov"))
        ndaemon.world.ip("route", "del", "10.216.0.0/16")


def test_small_network_runs_out_cleanly_and_removal_in_use_refused(ndaemon: NetnsDaemon) -> None:
    nets = networks(ndaemon)
    nets.CreateNetwork(pb.CreateNetworkReq(name="tiny", cidr="10.213.0.0/29"))
    holders = [run(ndaemon, "sleep", "60", network="tiny") for _ in range(5)]
    for job_id in holders:
        wait_status(ndaemon.jobs(), job_id, {"RUNNING"})
    # The sixth gets no address: the job fails with a clear reason, no veth left.
    sixth = run(ndaemon, "true", network="tiny")
    res = wait_status(ndaemon.jobs(), sixth, FINAL)
    assert res.status == "FAILED"
    assert "network 'tiny' has no free address" in res.endReason
    veths = [n for n in ndaemon.world.links() if n.startswith(ndaemon.prefix() + "v")]
    assert len(veths) == 5
    with pytest.raises(grpc.RpcError) as err:
        nets.RemoveNetwork(pb.RemoveNetworkReq(name="tiny"))
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert holders[0] in (err.value.details() or "")
    listed = {n.name: n.jobCount for n in nets.ListNetworks(pb.EmptyRequest()).networks}
    assert listed["tiny"] == 5
    for job_id in holders:
        ndaemon.jobs().StopJob(pb.StopJobReq(uuid=job_id))
    for job_id in holders:
        wait_status(ndaemon.jobs(), job_id, FINAL)
    # Freed addresses serve again, then the network goes away.
    status, out = finish(ndaemon, run(ndaemon, "true", network="tiny"))
    assert status == "COMPLETED", out
    nets.RemoveNetwork(pb.RemoveNetworkReq(name="tiny"))
    assert "tiny" not in {n.name for n in nets.ListNetworks(pb.EmptyRequest()).networks}


def _network_footprint(d: NetnsDaemon) -> dict[str, object]:
    """What jobs could leave behind in the daemon's namespace."""
    table = d.table()
    return {
        "links": sorted(d.world.links()),
        "addresses": sorted(
            (line.split()[1], line.split()[3])
            for line in d.world.ip("-4", "-o", "addr").splitlines()
        ),
        "rules": d.world.run("nft", "list", "table", "inet", table),
        "netns": _job_netns(d),
    }


def _job_netns(d: NetnsDaemon) -> set[str]:
    """Network namespaces of processes other than the world's own ones."""
    ours, parent = os.readlink(d.world.netns), d.cgroup_parent()
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                if parent not in f.read():
                    continue
            found.add(os.readlink(f"/proc/{pid}/ns/net"))
        except OSError:
            continue
    return found - {ours}


def test_many_bridge_jobs_leave_nothing_behind(ndaemon: NetnsDaemon) -> None:
    count = int(os.environ.get("JOBLET_TEST_CLEANUP_JOBS", "500"))
    before = _network_footprint(ndaemon)
    stub = ndaemon.jobs()
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: run(ndaemon, "true", network="bridge"), range(count)))
    deadline = time.monotonic() + 120
    while True:
        listed = {j.uuid: j.status for j in stub.ListJobs(pb.EmptyRequest()).jobs}
        pending = [i for i in ids if listed.get(i) not in FINAL]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    print(f"{count} bridge jobs in {elapsed:.1f} s")
    assert not pending, f"{len(pending)} jobs still running"
    assert {listed[i] for i in ids} == {"COMPLETED"}
    # The kernel frees a dropped namespace and its veth pair asynchronously.
    deadline = time.monotonic() + 30
    while (after := _network_footprint(ndaemon)) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert after == before
    nets = networks(ndaemon).ListNetworks(pb.EmptyRequest()).networks
    assert {n.name: n.jobCount for n in nets}["bridge"] == 0


# 64 MiB to the outside's sink, then what the sink counted.
STREAM_OUT = (
    "import socket\n"
    f"c = socket.create_connection(('{OUTSIDE_ADDR}', 8082), timeout=10)\n"
    "buf = b'x' * (1 << 20)\n"
    "for _ in range(64): c.sendall(buf)\n"
    "c.shutdown(socket.SHUT_WR)\n"
    "print(c.recv(100).decode())\n"
)


def test_big_tcp_on_streams_out_through_nat_whole(tmp_path: Any) -> None:
    """With bigTcp forced on and a 64 KiB uplink, a job's 512 KiB packets are
    cut up on their way out (after NAT) and every byte arrives."""
    with netns_daemon(tmp_path, {"network": {"bigTcp": "on"}}) as running:
        status, out = finish(running, run(running, "python3", "-c", STREAM_OUT, network="bridge"))
    assert status == "COMPLETED", out
    assert int(out.strip()) == 64 << 20
