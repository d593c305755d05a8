"""kill -9 of a daemon whose jobs use a custom network and a volume, then a
restart: networks, allocations and data intact, running jobs keep address and
name, leftovers of this daemon removed and everything else left alone. The
daemon runs in a namespace of the test's own (network_world.py)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.network.alloclog import load_with_log

from .conftest import ROOT_NEEDED, wait_status
from .network_world import NetnsDaemon, netns_daemon
from .test_volumes_service import unmount_volumes

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
# Writes into the volume, then answers every connection with its hostname.
SERVE = (
    "import socket\n"
    "open('/volumes/data/note', 'w').write('written before the kill')\n"
    "s = socket.create_server(('0.0.0.0', 8080))\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(socket.gethostname().encode()); c.close()\n"
)
ASK = (
    "import socket\n"
    "address = socket.gethostbyname('srv')\n"
    "with socket.create_connection(('srv', 8080), timeout=5) as c:\n"
    "    print(address, c.recv(100).decode(), open('/volumes/data/note').read())\n"
)


@pytest.fixture
def rdaemon(tmp_path: Path) -> Iterator[NetnsDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    if shutil.which("nft") is None or shutil.which("mkfs.ext4") is None:
        pytest.skip("needs nft (nftables) and mkfs.ext4 (e2fsprogs)")
    with netns_daemon(tmp_path) as running:
        try:
            yield running
        finally:
            running.stop()  # before the volumes' mounts go
            unmount_volumes(running.root)


def run(d: NetnsDaemon, command: str, *args: str, **fields: Any) -> str:
    req = pb.RunJobRequest(command=command, args=list(args), **fields)
    return str(d.jobs().RunJob(req).jobUuid)


def allocations(d: NetnsDaemon) -> dict[str, Any]:
    state = load_with_log(str(d.root / "network" / "state.json"))
    return dict(state.allocations)


def plant(d: NetnsDaemon) -> tuple[list[str], list[str]]:
    """Leftovers a crashed daemon of this id could leave (the bridge of a
    network whose removal it recorded but did not finish), and things of
    others; returns (ours, others) interface names."""
    prefix, world = d.prefix(), d.world
    ours = [f"{prefix}bdeadbeef"]
    world.ip("link", "add", ours[0], "type", "bridge")
    # Not joblet's; another daemon's prefix; this prefix but never recorded.
    others = ["keep0", "jzzzb00000000", f"{prefix}v0000stale"]
    for name in others:
        world.ip("link", "add", name, "type", "bridge")
    world.run("nft", "add", "chain", "inet", d.table(), "stale")
    world.run("nft", "add", "table", "inet", "keepme")
    world.run("nft", "add", "chain", "inet", "keepme", "c")
    world.run("nft", "add", "rule", "inet", "keepme", "c", "tcp", "dport", "4242", "accept")
    return ours, others


def test_kill9_restart_keeps_networks_allocations_data_and_names(rdaemon: NetnsDaemon) -> None:
    d, world = rdaemon, rdaemon.world
    nets = pb_grpc.NetworkServiceStub(d.channel())
    vols = pb_grpc.VolumeServiceStub(d.channel())
    nets.CreateNetwork(pb.CreateNetworkReq(name="keep", cidr="10.214.0.0/24"))
    vols.CreateVolume(pb.CreateVolumeReq(name="data", size="32MB"))
    server = run(d, "python3", "-c", SERVE, name="srv", network="keep", volumes=["data"])
    other = run(d, "sleep", "300", name="other", network="keep", volumes=["data:ro"])
    for job_id in (server, other):
        wait_status(d.jobs(), job_id, {"RUNNING"})
    before = allocations(d)
    table = d.table()
    rules = world.run("nft", "list", "table", "inet", table)
    ours, others = plant(d)
    keepme = world.run("nft", "list", "table", "inet", "keepme")

    d.kill9()
    state_path = d.root / "network" / "state.json"
    state = json.loads(state_path.read_text())
    state["retired"] = ours
    state_path.write_text(json.dumps(state))
    d.restart()

    assert allocations(d) == before
    listed = {n.name: n for n in nets.ListNetworks(pb.EmptyRequest()).networks}
    assert (listed["keep"].cidr, listed["keep"].jobCount) == ("10.214.0.0/24", 2)
    assert "data" in {v.name for v in vols.ListVolumes(pb.EmptyRequest()).volumes}
    for job_id in (server, other):
        assert d.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status == "RUNNING"
    links = world.links()
    assert not set(ours) & set(links), links
    assert set(others) <= set(links)
    assert world.run("nft", "list", "table", "inet", table) == rules  # the stale chain is gone
    assert world.run("nft", "list", "table", "inet", "keepme") == keepme
    # A new job on the network finds the old one by name, at its old address,
    # and reads what it wrote into the volume.
    asker = run(d, "python3", "-c", ASK, network="keep", volumes=["data:ro"])
    res = wait_status(d.jobs(), asker, FINAL, timeout=30)
    out = b"".join(c.payload for c in d.jobs().GetJobLogs(pb.GetJobLogsReq(uuid=asker))).decode()
    assert res.status == "COMPLETED", out
    assert out.split(maxsplit=2) == [before[server].address, "srv", "written before the kill\n"]
    for job_id in (server, other):
        d.jobs().StopJob(pb.StopJobReq(uuid=job_id))
        wait_status(d.jobs(), job_id, FINAL)
