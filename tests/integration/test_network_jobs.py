"""Job networks through the daemon: modes, custom networks with names, refusals.

The daemon runs in a network namespace of the test's own (network_world.py):
its bridges and rules never touch the host's, and every packet stays between
its jobs or on loopback inside a job.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, RunningDaemon, wait_status
from .network_world import netns_daemon

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
# A TCP server on port 8080 answering one connection with its hostname.
SERVE = (
    "import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
    "s.bind(('0.0.0.0', 8080)); s.listen(); c,_=s.accept();"
    "c.sendall(socket.gethostname().encode()); c.close()"
)
CONNECT = (
    "import socket,sys,time\n"
    "for _ in range(100):\n"
    "    try:\n"
    "        c=socket.create_connection((sys.argv[1], 8080), timeout=2); break\n"
    "    except OSError: time.sleep(0.05)\n"
    "print(c.recv(100).decode())\n"
)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    if shutil.which("nft") is None:
        pytest.skip("needs nft (apt-get install nftables)")
    with netns_daemon(tmp_path_factory.mktemp("netjobs")) as running:
        yield running


def run(stub: pb_grpc.JobServiceStub, command: str, *args: str, **fields: object) -> str:
    return str(stub.RunJob(pb.RunJobRequest(command=command, args=list(args), **fields)).jobUuid)


def logs(stub: pb_grpc.JobServiceStub, job_id: str) -> str:
    return b"".join(c.payload for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id))).decode()


def test_bridge_jobs_reach_each_other_by_address(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    server = run(stub, "python3", "-c", SERVE, name="srv", network="bridge")
    wait_status(stub, server, {"RUNNING"})
    address = _own_address(server)
    client = run(stub, "python3", "-c", CONNECT, address, network="bridge")
    assert logs(stub, client).strip() == "srv"
    assert wait_status(stub, server, FINAL).status == "COMPLETED"


def test_custom_network_resolves_names(daemon: RunningDaemon) -> None:
    nets = pb_grpc.NetworkServiceStub(daemon.channel())
    nets.CreateNetwork(pb.CreateNetworkReq(name="lab", cidr="10.203.7.0/24"))
    stub = daemon.jobs()
    server = run(stub, "python3", "-c", SERVE, name="db", network="lab")
    wait_status(stub, server, {"RUNNING"})
    client = run(stub, "python3", "-c", CONNECT, "db", network="lab")
    assert logs(stub, client).strip() == "db"
    listed = {n.name: n for n in nets.ListNetworks(pb.EmptyRequest()).networks}
    assert listed["lab"].cidr == "10.203.7.0/24"
    # Who else may reach it: test_network_isolation.py.
    with pytest.raises(grpc.RpcError) as err:
        nets.CreateNetwork(pb.CreateNetworkReq(name="lab", cidr="10.203.8.0/24"))
    assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS


def test_none_has_only_loopback_and_host_is_refused(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job = run(
        stub, "sh", "-c", "cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' '", network="none"
    )
    assert logs(stub, job).split() == ["lo"]
    with pytest.raises(grpc.RpcError) as err:
        run(stub, "true", network="host")
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "allowHost" in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        run(stub, "true", network="no-such-net")
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        run(stub, "true", network="none", maxIngressBitsPerSec=1_000_000)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def _own_address(job_id: str) -> str:
    # /proc/<pid>/net/fib_trie of the job's init lists its addresses.
    pid = _init_pid(job_id)
    with open(f"/proc/{pid}/net/fib_trie") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if "/32 host LOCAL" in line:
            address = lines[i - 1].split()[-1]
            if not address.startswith("127."):
                return address
    raise AssertionError("job has no address")


def _init_pid(job_id: str) -> int:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cgroup") as f:
                in_job = job_id in f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                is_tini = f.read().startswith(b"tini")
        except OSError:
            continue
        if in_job and is_tini:
            return int(entry)
    raise AssertionError(f"no init process for job {job_id}")


RECEIVE = (
    "import socket,time; s=socket.socket();"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
    "s.bind(('0.0.0.0', 8080)); s.listen(); c,_=s.accept(); n=0; t=None\n"
    "while True:\n"
    "    b=c.recv(1<<16)\n"
    "    if not b: break\n"
    "    t=t or time.monotonic(); n+=len(b)\n"
    "print(n*8/(time.monotonic()-t))\n"
)
SEND = (
    "import socket,sys,time\n"
    "for _ in range(100):\n"
    "    try:\n"
    "        c=socket.create_connection((sys.argv[1], 8080), timeout=2); break\n"
    "    except OSError: time.sleep(0.05)\n"
    "end=time.monotonic()+5; buf=b'x'*65536\n"
    "while time.monotonic()<end: c.sendall(buf)\n"
    "c.close()\n"
)


@pytest.mark.parametrize("direction", ["egress", "ingress"])
def test_bandwidth_limit_within_ten_percent(daemon: RunningDaemon, direction: str) -> None:
    """10 Mbit/s on the sender's way out (egress) or the receiver's way in (ingress)."""
    stub = daemon.jobs()
    rate = 10_000_000
    receiver_limit = {"maxIngressBitsPerSec": rate} if direction == "ingress" else {}
    sender_limit = {"maxEgressBitsPerSec": rate} if direction == "egress" else {}
    receiver = run(stub, "python3", "-c", RECEIVE, network="bridge", **receiver_limit)
    wait_status(stub, receiver, {"RUNNING"})
    sender = run(
        stub, "python3", "-c", SEND, _own_address(receiver), network="bridge", **sender_limit
    )
    assert wait_status(stub, sender, FINAL, timeout=30).status == "COMPLETED"
    measured = float(logs(stub, receiver).strip())
    assert 0.9 * rate <= measured <= 1.1 * rate, f"{measured / 1e6:.2f} Mbit/s"


# 64 MiB in 1 MiB writes, then eth0's mean transmitted packet size.
SEND_BULK = (
    "import socket,sys,time\n"
    "for _ in range(100):\n"
    "    try:\n"
    "        c=socket.create_connection((sys.argv[1], 8080), timeout=2); break\n"
    "    except OSError: time.sleep(0.05)\n"
    "buf=b'x'*(1<<20)\n"
    "for _ in range(64): c.sendall(buf)\n"
    "c.close()\n"
    "dev=[l.split(':')[1].split() for l in open('/proc/net/dev') if 'eth0:' in l][0]\n"
    "print(int(dev[8])//int(dev[9]))\n"  # transmitted bytes, packets
)


def _kernel_at_least(major: int, minor: int) -> bool:
    release = os.uname().release.split(".")
    return (int(release[0]), int(release[1].split("-")[0])) >= (major, minor)


def _mean_packet(stub: pb_grpc.JobServiceStub) -> int:
    """Mean size of the packets a job sends in a 64 MiB stream to another job."""
    receiver = run(stub, "python3", "-c", RECEIVE, network="bridge")
    wait_status(stub, receiver, {"RUNNING"})
    sender = run(stub, "python3", "-c", SEND_BULK, _own_address(receiver), network="bridge")
    status = wait_status(stub, sender, FINAL, timeout=30).status
    assert status == "COMPLETED", logs(stub, sender)
    wait_status(stub, receiver, FINAL)
    return int(logs(stub, sender).strip())


def test_big_tcp_auto_stays_off_with_a_64k_uplink(daemon: RunningDaemon) -> None:
    """This world's uplink takes 64 KiB packets: a job's bigger ones would
    be cut up in software on their way out, so `auto` leaves job veths at
    the kernel's default."""
    mean = _mean_packet(daemon.jobs())
    assert 1500 < mean <= 65536, f"mean packet {mean} bytes"


def test_big_tcp_on_gives_job_veths_512k_packets(tmp_path: Path) -> None:
    """With bigTcp on, job veths take 512 KiB GSO packets (kernel 6.3+): the
    bridge and netfilter run once per 512 KiB of a stream, not per 64."""
    if not _kernel_at_least(6, 3):
        pytest.skip("IPv4 BIG TCP needs kernel 6.3 or later")
    with netns_daemon(tmp_path, {"network": {"bigTcp": "on"}}) as running:
        mean = _mean_packet(running.jobs())
    assert mean > 100_000, f"mean packet {mean} bytes"
