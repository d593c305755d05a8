"""Two daemons, set up with `joblet setup`'s defaults, side by side in one
network namespace: each is killed (-9) and restarted in turn while both run
jobs and take new ones. Neither may touch the other's jobs, bridges, nftables
table, networks or volumes, and a clean stop of both leaves nothing of either.

Each daemon has a custom network `lab` and a filesystem volume `data` (the
same names on both, so that a mix-up shows) and three long jobs that listen
on TCP 8080 and answer with their name: one on the bridge, one on `lab`, one
on no network; each writes a marker file in the volume. Probe jobs check that
peers on the same network answer and the other daemon's jobs do not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from integration.conftest import ROOT_NEEDED, RunningDaemon, wait_status
from integration.jobs_support import FINAL, logs
from integration.netns import Netns
from integration.test_volumes_service import unmount_volumes

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.resources.ownership import read_owner

from .pair_support import (
    Placement,
    addresses,
    cgroup_dirs,
    gateway_of,
    link_addresses,
    loop_devices_under,
    mount_source,
    setup_and_serve,
)
from .support import alive, jobs_by_name, scale, wait_all_final

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.privileged]

ROUNDS = scale(2, 5)  # kills of each daemon
LAB = {"a": "192.168.231.0/24", "b": "192.168.232.0/24"}
LONG_JOBS = {"bridge": "bridge", "lab": "lab", "vol": "none"}  # suffix -> network
LISTEN = (
    "import os, socket, sys\n"
    "name, code = sys.argv[1], int(sys.argv[2])\n"
    "open('/volumes/data/' + name, 'w').write(os.environ['JOB_ID'])\n"
    "s = socket.create_server(('0.0.0.0', 8080))\n"
    "s.settimeout(0.2)\n"
    "print('up-' + name, flush=True)\n"
    "while not os.path.exists('/volumes/data/go'):\n"
    "    try:\n"
    "        c, _ = s.accept()\n"
    "    except TimeoutError:\n"
    "        continue\n"
    "    with c:\n"
    "        c.sendall(name.encode())\n"
    "print('done-' + name, flush=True)\n"
    "sys.exit(code)\n"
)
# One line per target: the target and the name it answered, or `unreachable`.
PROBE = (
    "import socket, sys\n"
    "for target in sys.argv[1:]:\n"
    "    try:\n"
    "        with socket.create_connection((target, 8080), timeout=1.5) as c:\n"
    "            c.settimeout(1.5)\n"
    "            print(target, c.recv(64).decode() or '-')\n"
    "    except OSError:\n"
    "        print(target, 'unreachable')\n"
)
SHORT = 'echo "line-$JOB_NAME"; exit "$1"'
SHORT_NETWORKS = ("bridge", "lab", "none")


@dataclass
class Side:
    """One daemon and what the test gave it."""

    tag: str
    daemon: RunningDaemon
    placement: Placement
    long_jobs: dict[str, str] = field(default_factory=dict)  # name -> job id
    codes: dict[str, int] = field(default_factory=dict)  # every job's name -> exit code
    acked: dict[str, str] = field(default_factory=dict)  # short jobs: name -> job id
    unsure: set[str] = field(default_factory=set)  # RunJob failed: answer lost

    def stub(self) -> pb_grpc.JobServiceStub:
        return self.daemon.jobs()

    def volume_mount(self) -> Path:
        return self.daemon.root / "volumes" / "data" / "mnt"


@pytest.fixture
def world() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    if shutil.which("nft") is None or shutil.which("mkfs.ext4") is None:
        pytest.skip("needs nft (nftables) and mkfs.ext4 (e2fsprogs)")
    shared = Netns()
    yield shared
    shared.close()


@pytest.fixture
def pair(world: Netns, tmp_path: Path) -> Iterator[list[RunningDaemon]]:
    """Daemon a, then (its owner record on /run now names its root, as a
    user's first daemon would leave it) daemon b, both in `world`."""
    started: list[RunningDaemon] = []
    try:
        for tag in ("a", "b"):
            started.append(setup_and_serve(tmp_path / tag, world))
        yield started
    finally:
        for daemon in started:
            with contextlib.suppress(Exception):
                daemon.stop()  # the first one's closes `world` too: the other is in it
            unmount_volumes(daemon.root)


@pytest.mark.slow  # over 15 s: make test-all runs it
@pytest.mark.timeout(scale(240, 600))
def test_two_daemons_killed_in_turn_keep_to_their_own(pair: list[RunningDaemon]) -> None:
    started = time.monotonic()
    sides = [Side(tag, d, Placement.of(d)) for tag, d in zip("ab", pair, strict=True)]
    a, b = sides
    _check_distinct_placements(a.placement, b.placement)
    for side in sides:
        _create_network_and_volume(side)
    for side in sides:
        _start_long_jobs(side)
    for side in sides:
        for job_id in side.long_jobs.values():
            wait_status(side.stub(), job_id, {"RUNNING"}, timeout=60)
    for side in sides:
        _wait_markers(side)
    _check_kernel_objects(sides)
    _check_reachability(sides)

    stop_load = threading.Event()
    loaders = [threading.Thread(target=_load, args=(s, stop_load)) for s in sides]
    for loader in loaders:
        loader.start()
    try:
        for _ in range(ROUNDS):
            for side in sides:
                time.sleep(0.5)  # load reaches the daemon about to die
                side.daemon.kill9()
                side.daemon.restart()
                _check_long_jobs_running(sides)
                _check_kernel_objects(sides)
            _check_reachability(sides)
    finally:
        stop_load.set()
        for loader in loaders:
            loader.join(timeout=60)
    chaos_s = time.monotonic() - started

    for side in sides:
        (side.volume_mount() / "go").touch()
    for side in sides:
        _check_every_job(side)
    _check_kernel_objects(sides)
    _stop_both_and_check_nothing_left(sides)
    total_s = time.monotonic() - started
    load = ", ".join(f"{s.tag}: {len(s.acked)} taken, {len(s.unsure)} unsure" for s in sides)
    print(f"two daemons, {ROUNDS} kills each: chaos {chaos_s:.1f}s, in all {total_s:.1f}s; {load}")


def _check_distinct_placements(a: Placement, b: Placement) -> None:
    assert a.cgroup_parent != b.cgroup_parent, (a, b)
    assert a.bridge_cidr != b.bridge_cidr, (a, b)
    assert a.isolated_pool != b.isolated_pool, (a, b)
    assert a.prefix != b.prefix and a.table != b.table, (a, b)


def _create_network_and_volume(side: Side) -> None:
    channel = side.daemon.channel()
    nets, vols = pb_grpc.NetworkServiceStub(channel), pb_grpc.VolumeServiceStub(channel)
    nets.CreateNetwork(pb.CreateNetworkReq(name="lab", cidr=LAB[side.tag]), timeout=30)
    vols.CreateVolume(pb.CreateVolumeReq(name="data", size="16MB"), timeout=60)


def _start_long_jobs(side: Side) -> None:
    for k, (suffix, network) in enumerate(LONG_JOBS.items()):
        name = f"{side.tag}-{suffix}"
        side.codes[name] = 10 + k + (10 if side.tag == "b" else 0)
        request = pb.RunJobRequest(
            name=name, command="python3", args=["-c", LISTEN, name, str(side.codes[name])],
            network=network, volumes=["data"],
        )  # fmt: skip
        side.long_jobs[name] = side.stub().RunJob(request, timeout=30).jobUuid


def _wait_markers(side: Side) -> None:
    """Every long job wrote its id into its own daemon's volume."""
    deadline = time.monotonic() + 30
    for name, job_id in side.long_jobs.items():
        marker = side.volume_mount() / name
        while not (marker.exists() and marker.read_text() == job_id):
            assert time.monotonic() < deadline, f"{name} wrote no marker in {marker}"
            time.sleep(0.1)


def _load(side: Side, stop: threading.Event) -> None:
    """Short jobs, one about every 0.2 s, across the kills; a RunJob that
    fails (the daemon is down) is noted as unsure and the next one tried."""
    stub, i = side.stub(), 0  # one channel: it reconnects after each restart
    while not stop.is_set():
        name, code = f"{side.tag}-load-{i}", i % 40
        side.codes[name] = code
        request = pb.RunJobRequest(
            name=name, command="sh", args=["-c", SHORT, "job", str(code)],
            network=SHORT_NETWORKS[i % 3], volumes=["data"] if i % 2 else [],
        )  # fmt: skip
        try:
            side.acked[name] = stub.RunJob(request, timeout=10).jobUuid
        except grpc.RpcError:
            side.unsure.add(name)
        i += 1
        stop.wait(0.2)


def _check_long_jobs_running(sides: list[Side]) -> None:
    for side in sides:
        stub = side.stub()
        for name, job_id in side.long_jobs.items():
            job = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id), timeout=30)
            assert job.status == "RUNNING", (name, job.status, job.exitCode, job.endReason)


def _check_kernel_objects(sides: list[Side]) -> None:
    """Each daemon's bridges carry its own gateways, its table names only
    its own interfaces, its volume is mounted from a loop device of its own
    root, and its cgroup parent is there."""
    world = sides[0].daemon.world
    tables = world.nft_tables()
    for side, other in (sides, sides[::-1]):
        p, theirs = side.placement, other.placement
        for network, cidr in (("bridge", p.bridge_cidr), ("lab", LAB[side.tag])):
            found = link_addresses(world, p.bridge(network))
            assert found == [gateway_of(cidr)], (side.tag, network, p.bridge(network), found)
        assert f"table inet {p.table}" in tables, (side.tag, tables)
        rules = world.run("nft", "list", "table", "inet", p.table)
        assert f'"{p.prefix}*"' in rules and theirs.prefix not in rules, (side.tag, rules)
        source = mount_source(side.volume_mount())
        devices = loop_devices_under(side.daemon.root)
        assert source is not None and source.removeprefix("/dev/") in devices, (
            side.tag, source, devices,
        )  # fmt: skip
        assert not set(devices) & set(loop_devices_under(other.daemon.root))
        assert cgroup_dirs(p.cgroup_parent), (side.tag, p.cgroup_parent)


def _check_reachability(sides: list[Side]) -> None:
    """From each daemon's bridge and `lab`: its own peer there answers, the
    other daemon's listeners (bridge and lab) do not."""
    probes: list[tuple[Side, str, dict[str, str]]] = []
    for side, other in (sides, sides[::-1]):
        mine, theirs = addresses(side.daemon), addresses(other.daemon)
        their_bridge = theirs[other.long_jobs[f"{other.tag}-bridge"]]
        their_lab = theirs[other.long_jobs[f"{other.tag}-lab"]]
        own_bridge = mine[side.long_jobs[f"{side.tag}-bridge"]]
        expect = {own_bridge: f"{side.tag}-bridge"}
        expect |= {their_bridge: "unreachable", their_lab: "unreachable"}
        probes.append((side, "bridge", expect))
        # On a custom network peers are found by name.
        expect = {f"{side.tag}-lab": f"{side.tag}-lab"}
        expect |= {their_lab: "unreachable", their_bridge: "unreachable"}
        probes.append((side, "lab", expect))
    launched = []
    for side, network, expect in probes:
        request = pb.RunJobRequest(command="python3", args=["-c", PROBE, *expect], network=network)
        launched.append(side.stub().RunJob(request, timeout=30).jobUuid)
    for (side, network, expect), job_id in zip(probes, launched, strict=True):
        job = wait_status(side.stub(), job_id, FINAL, timeout=60)
        out = logs(side.stub(), job_id).decode()
        answered = dict(line.split(" ", 1) for line in out.splitlines())
        assert (job.status, answered) == ("COMPLETED", expect), (side.tag, network, out)


def _check_every_job(side: Side) -> None:
    """Every job the daemon took ends with its own exit code and output;
    none was killed (the test stops none)."""
    stub = side.stub()
    names = [*side.long_jobs, *side.acked]
    ended = wait_all_final(stub, names, timeout=120)
    listed = jobs_by_name(stub)
    for name in side.unsure:
        if name in listed:
            job = wait_all_final(stub, [name], timeout=60)[name]
            if job.endReason.startswith("lost:"):  # the daemon died before its launch
                continue
            ended[name] = job
    killed = {
        n: j.endReason for n, j in ended.items() if j.exitCode == 137 or "signal" in j.endReason
    }
    assert not killed, f"daemon {side.tag}: jobs killed: {killed}"
    for name, job in ended.items():
        code = side.codes[name]
        status = "COMPLETED" if code == 0 else "FAILED"
        assert (job.status, job.exitCode) == (status, code), (name, job.endReason)
        if name in side.long_jobs:
            assert job.uuid == side.long_jobs[name]
            assert logs(stub, job.uuid) == f"up-{name}\ndone-{name}\n".encode(), name
        else:
            assert logs(stub, job.uuid) == f"line-{name}\n".encode(), name
        assert len(listed[name]) == 1, f"{name} listed {len(listed[name])} times"


def _stop_both_and_check_nothing_left(sides: list[Side]) -> None:
    """A clean stop of a leaves b's objects alone; after b's nothing of either is left."""
    world = sides[0].daemon.world
    for i, side in enumerate(sides):
        launcher = side.daemon.launcher_pid()
        side.daemon.stop_daemon_only()
        deadline = time.monotonic() + 10
        while alive(launcher):
            assert time.monotonic() < deadline, f"daemon {side.tag}'s launcher outlived it"
            time.sleep(0.05)
        links, tables = world.links(), world.nft_tables()
        for gone in sides[: i + 1]:
            p = gone.placement
            assert not [x for x in links if x.startswith(p.prefix)], (gone.tag, links)
            assert f"table inet {p.table}" not in tables, (gone.tag, tables)
            assert not cgroup_dirs(p.cgroup_parent), (gone.tag, p.cgroup_parent)
            assert not loop_devices_under(gone.daemon.root), gone.tag
            assert read_owner(p.cgroup_parent) is None, (gone.tag, p.cgroup_parent)
        if i == 0:
            _check_kernel_objects_of_one(sides[1], world)


def _check_kernel_objects_of_one(side: Side, world: Netns) -> None:
    p = side.placement
    assert link_addresses(world, p.bridge("bridge")) == [gateway_of(p.bridge_cidr)]
    assert link_addresses(world, p.bridge("lab")) == [gateway_of(LAB[side.tag])]
    assert f"table inet {p.table}" in world.nft_tables()
    assert loop_devices_under(side.daemon.root)
    assert cgroup_dirs(p.cgroup_parent)


@pytest.mark.timeout(120)
def test_a_range_taken_while_its_daemon_was_stopped_stays_with_the_taker(
    pair: list[RunningDaemon],
) -> None:
    """a's network keeps its definition over a clean stop; b takes its range
    meanwhile. a starts again without making a second bridge on that range
    (b's jobs would lose their route), says why jobs cannot use the network,
    and lets it be removed."""
    a, b = pair
    world = a.world
    nets_a = pb_grpc.NetworkServiceStub(a.channel())
    nets_b = pb_grpc.NetworkServiceStub(b.channel())
    nets_a.CreateNetwork(pb.CreateNetworkReq(name="lab", cidr=LAB["a"]), timeout=30)
    a.stop_daemon_only()
    nets_b.CreateNetwork(pb.CreateNetworkReq(name="lab", cidr=LAB["a"]), timeout=30)
    a.restart()

    routes = world.ip("-4", "route", "show", LAB["a"]).splitlines()
    assert [r.split()[2] for r in routes] == [Placement.of(b).bridge("lab")], routes
    assert not link_addresses(world, Placement.of(a).bridge("lab"))
    with pytest.raises(grpc.RpcError) as refused:
        a.jobs().RunJob(pb.RunJobRequest(command="true", network="lab"), timeout=30)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert LAB["a"] in str(refused.value.details()), refused.value.details()
    job_id = a.jobs().RunJob(pb.RunJobRequest(command="true"), timeout=30).jobUuid
    assert wait_status(a.jobs(), job_id, FINAL, timeout=60).status == "COMPLETED"
    nets_a.RemoveNetwork(pb.RemoveNetworkReq(name="lab"), timeout=30)
    assert [r.split()[2] for r in world.ip("-4", "route", "show", LAB["a"]).splitlines()] == [
        Placement.of(b).bridge("lab")
    ]
