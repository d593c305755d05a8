"""Plumbing shared by the network benchmarks: a private network namespace for
the whole run, one TCP sender/receiver program, a bare veth pair between two
bare namespaces (the baseline), and the same stream between two jobs.

Every packet stays inside namespaces the benchmark makes: the script first
moves itself into a fresh network namespace (only `lo`), so the daemon it
starts builds its bridges and nftables table there, and the baseline's two
namespaces are created from there too. Nothing on the host is touched.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from common import Daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.isolation import libc

PORT = 5201
# The jobs and the baseline run the same interpreter: the system's, which a
# job sees in its /usr (a user's PATH may hold shims instead).
PYTHON = "/usr/bin/python3"
FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}

# Accepts one connection and prints what came: bytes, and seconds from the
# first byte to EOF (so connection set-up and the sender's start don't count).
RECEIVE = """
import json, socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(1)
srv.settimeout(60)
conn, _ = srv.accept()
buf = bytearray(1 << 20)
total, first = 0, None
while True:
    n = conn.recv_into(buf)
    if not n:
        break
    if first is None:
        first = time.monotonic()
    total += n
seconds = time.monotonic() - first if first is not None else 0.0
print(json.dumps({"bytes": total, "seconds": seconds}), flush=True)
"""

# Connects (retrying while the receiver starts) and writes 1 MiB chunks for
# argv[3] seconds, then closes.
SEND = """
import socket, sys, time
for _ in range(400):
    try:
        conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
        break
    except OSError:
        time.sleep(0.05)
else:
    sys.exit("could not connect")
chunk = memoryview(b"x" * (1 << 20))
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    conn.sendall(chunk)
conn.close()
"""


def enter_private_netns() -> None:
    """Move this process into a new network namespace with `lo` up.

    unshare(CLONE_NEWNET) moves only the calling thread, so it must run
    before anything starts threads (a gRPC channel does)."""
    libc.unshare(libc.CLONE_NEWNET)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def bits_per_sec(receiver_output: str) -> float:
    result = json.loads(receiver_output.strip().splitlines()[-1])
    if result["seconds"] <= 0:
        raise RuntimeError(f"receiver got no data: {receiver_output!r}")
    return float(result["bytes"]) * 8 / float(result["seconds"])


def mbit(value: float) -> str:
    return f"{value / 1e6:,.1f} Mbit/s"


# ---- the baseline: two bare namespaces and a veth pair ------------------------


# Each job runs in its own cgroup under the daemon's parent, so on a busy
# host the two jobs together get the CPU share of one top-level group. The
# baseline's two processes get the same layout (parent/rx, parent/tx);
# otherwise they would compete as two top-level tasks and the comparison
# would measure the scheduler, not the network path.
CPU_HIERARCHIES = (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup"))
JOIN_CGROUP = 'echo $$ > "$0/cgroup.procs" && exec "$@"'


@contextlib.contextmanager
def cpu_cgroups(tag: str) -> Iterator[dict[str, Path]]:
    """A parent cgroup with children rx and tx in the cpu hierarchy (v1) or
    the unified one (v2); empty if neither can be found."""
    base = next((b for b in CPU_HIERARCHIES if (b / "cgroup.procs").exists()), None)
    if base is None:
        yield {}
        return
    parent = base / f"joblet-bench-raw-{tag}"
    groups = {name: parent / name for name in ("rx", "tx")}
    try:
        for group in groups.values():
            group.mkdir(parents=True)
        yield groups
    finally:
        for directory in (*groups.values(), parent):
            with contextlib.suppress(OSError):
                directory.rmdir()


@dataclass
class RawPair:
    """Namespaces `a` (receiver, 192.168.77.1) and `b` (sender, .2)."""

    a: str
    b: str
    cgroups: dict[str, Path]
    receiver_address: str = "192.168.77.1"

    def _argv(self, role: str, ns: str, *command: str) -> list[str]:
        argv = ["ip", "netns", "exec", ns, *command]
        group = self.cgroups.get(role)
        return ["sh", "-c", JOIN_CGROUP, str(group), *argv] if group else argv

    def stream(self, seconds: float) -> float:
        """One TCP stream b -> a for `seconds`; bits/s seen by the receiver."""
        receiver = subprocess.Popen(
            self._argv("rx", self.a, PYTHON, "-c", RECEIVE, str(PORT)),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            sender = self._argv(
                "tx", self.b, PYTHON, "-c", SEND, self.receiver_address, str(PORT), str(seconds)
            )
            subprocess.run(sender, check=True, timeout=seconds + 60)
            out, _ = receiver.communicate(timeout=60)
        finally:
            if receiver.poll() is None:
                receiver.kill()
                receiver.wait()
        return bits_per_sec(out)

    def shape(self, side: str, argv: list[str]) -> None:
        """`tc qdisc replace` on the veth of namespace `side` ("a" or "b")."""
        ns, dev = (self.a, "va") if side == "a" else (self.b, "vb")
        subprocess.run(
            ["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", *argv],
            check=True,
        )

    def unshape(self) -> None:
        for ns, dev in ((self.a, "va"), (self.b, "vb")):
            subprocess.run(
                ["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"],
                check=False,
                stderr=subprocess.DEVNULL,
            )


# Gives a link of the current namespace the GSO/GRO sizes that joblet's job
# veths get (network.netlink.BIG_TCP_BYTES); run inside a baseline namespace.
BIG_TCP = """
import socket, sys
from joblet.network import netlink as nl
index = socket.if_nametoindex(sys.argv[1])
with nl.RtNetlink() as rt:
    rt.transact([nl.link_set(index, gso_bytes=nl.BIG_TCP_BYTES)])
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


@contextlib.contextmanager
def raw_pair(mtu: int = 1500, big_tcp: bool = False) -> Iterator[RawPair]:
    """The baseline pair; `big_tcp` gives both ends the GSO/GRO sizes of a
    job's veth (the default is the kernel's, 64 KiB)."""
    tag = uuid.uuid4().hex[:6]
    with cpu_cgroups(tag) as cgroups:
        pair = RawPair(f"jbench-a-{tag}", f"jbench-b-{tag}", cgroups)
        with _namespaces(pair, mtu):
            if big_tcp:
                for ns, dev in ((pair.a, "va"), (pair.b, "vb")):
                    _ip("netns", "exec", ns, sys.executable, "-c", BIG_TCP, dev)
            yield pair


@contextlib.contextmanager
def _namespaces(pair: RawPair, mtu: int) -> Iterator[None]:
    try:
        for ns in (pair.a, pair.b):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", "va", "mtu", str(mtu), "netns", pair.a, "type", "veth",
            "peer", "name", "vb", "mtu", str(mtu), "netns", pair.b)  # fmt: skip
        for ns, dev, address in ((pair.a, "va", "192.168.77.1"), (pair.b, "vb", "192.168.77.2")):
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        yield
    finally:
        for ns in (pair.a, pair.b):
            subprocess.run(["ip", "netns", "del", ns], check=False, stderr=subprocess.DEVNULL)


# ---- the same stream between two jobs ------------------------------------------


def wait_status(stub: pb_grpc.JobServiceStub, job_id: str, wanted: set[str], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        res = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
        if res.status in wanted:
            return res
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} stayed {res.status}, wanted {sorted(wanted)}")
        time.sleep(0.05)


def job_output(stub: pb_grpc.JobServiceStub, job_id: str) -> str:
    chunks = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id))
    return b"".join(c.payload for c in chunks).decode()


def create_network(daemon: Daemon, name: str, cidr: str) -> None:
    with grpc.secure_channel(daemon.address, daemon.credentials()) as sync:
        nets = pb_grpc.NetworkServiceStub(sync)  # type: ignore[no-untyped-call]
        nets.CreateNetwork(pb.CreateNetworkReq(name=name, cidr=cidr))


def job_stream(
    stub: pb_grpc.JobServiceStub,
    network: str,
    seconds: float,
    receiver_ingress_bps: int = 0,
    sender_egress_bps: int = 0,
) -> float:
    """One TCP stream between two jobs on `network`, the receiver named "rx"
    (the sender finds it by name); bits/s seen by the receiver."""
    receiver = stub.RunJob(
        pb.RunJobRequest(
            name="rx",
            command=PYTHON,
            args=["-c", RECEIVE, str(PORT)],
            network=network,
            maxIngressBitsPerSec=receiver_ingress_bps,
        )
    ).jobUuid
    try:
        wait_status(stub, receiver, {"RUNNING"}, timeout=30)
        sender = stub.RunJob(
            pb.RunJobRequest(
                command=PYTHON,
                args=["-c", SEND, "rx", str(PORT), str(seconds)],
                network=network,
                maxEgressBitsPerSec=sender_egress_bps,
            )
        ).jobUuid
        # Wait on the sender's log stream, which ends with the job: polling
        # GetJobStatus during the stream would cost the two jobs CPU that the
        # baseline's processes do not share.
        for _ in stub.GetJobLogs(pb.GetJobLogsReq(uuid=sender), timeout=seconds + 60):
            pass
        sent = wait_status(stub, sender, FINAL, timeout=60)
        if sent.status != "COMPLETED":
            raise RuntimeError(f"sender {sent.status}: {job_output(stub, sender)!r}")
        done = wait_status(stub, receiver, FINAL, timeout=60)
        if done.status != "COMPLETED":
            raise RuntimeError(f"receiver {done.status}: {job_output(stub, receiver)!r}")
        stub.DeleteJob(pb.DeleteJobReq(uuid=sender))
        return bits_per_sec(job_output(stub, receiver))
    finally:
        with contextlib.suppress(Exception):
            stub.StopJob(pb.StopJobReq(uuid=receiver))
        with contextlib.suppress(Exception):
            wait_status(stub, receiver, FINAL, timeout=10)
            stub.DeleteJob(pb.DeleteJobReq(uuid=receiver))
