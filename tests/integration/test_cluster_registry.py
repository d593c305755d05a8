"""Two real daemons of one cluster (cluster.name) sharing a redis-server, all
in one network namespace of the test's own: each renews its lease in the
cluster's registry, either one lists both (`rnx nodes --cluster`) and both
nodes' jobs (ListJobs, ListJobPages, GetJobStatus by prefix), and a node
killed with SIGKILL drops out of the registry once its lease lapses."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from joblet.api import joblet_pb2 as pb

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, wait_status
from .netns import Netns, in_netns
from .ui_support import Browser, mint, start_ui

REDIS_PORT = 6379  # inside the test's namespace: nothing else listens there
TTL_S = 2.0


@dataclass
class Cluster:
    daemons: dict[str, RunningDaemon]

    def node_id(self, name: str) -> str:
        return (self.daemons[name].root / "state" / "node-id").read_text().strip()

    def listed(self, via: str, *extra: str) -> dict[str, dict[str, object]]:
        res = self.daemons[via].rnx("nodes", "--cluster", "--json", *extra)
        assert res.returncode == 0, res.stderr
        return {n["node_id"]: n for n in json.loads(res.stdout)["nodes"]}


def _wait_redis(world: Netns, proc: subprocess.Popen[bytes]) -> None:
    def wait() -> None:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", REDIS_PORT)) == 0:
                    return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    in_netns(world.netns, wait)


def start_redis(world: Netns, binary: str, directory: Path) -> subprocess.Popen[bytes]:
    """redis-server inside `world` on REDIS_PORT, without persistence (not waited for)."""
    args = ["--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--dir", str(directory)]
    args += ["--save", "", "--appendonly", "no"]
    return subprocess.Popen(
        ["nsenter", f"--net={world.netns}", binary, *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    tmp = tmp_path_factory.mktemp("cluster")
    world = Netns()
    redis = start_redis(world, binary, tmp)
    daemons: dict[str, RunningDaemon] = {}
    try:
        _wait_redis(world, redis)
        for n, name in enumerate(("n1", "n2")):
            sections = {
                # each node's jobs under a prefix of its own; the registry is the cluster's
                "state": {
                    "backend": "redis",
                    "redis": {"port": REDIS_PORT, "keyPrefix": f"{name}:"},
                },
                "cluster": {"name": "test", "leaseTtl": f"{TTL_S}s", "renewEvery": "500ms",
                            "labels": {"role": name}},
                "network": {"bridgeCidr": f"10.23{n}.0.0/24", "isolatedPool": f"10.24{n}.0.0/24"},
            }  # fmt: skip
            daemons[name] = launch_daemon(Path(tmp / name), sections, world=world)
        yield Cluster(daemons)
    finally:
        for daemon in daemons.values():
            daemon.stop()
        redis.terminate()
        redis.wait(timeout=10)
        world.close()


def test_either_node_lists_both_with_what_their_leases_say(cluster: Cluster) -> None:
    ids = {name: cluster.node_id(name) for name in cluster.daemons}
    deadline = time.monotonic() + 10
    while set(cluster.listed("n1")) != set(ids.values()):
        assert time.monotonic() < deadline, cluster.listed("n1")
        time.sleep(0.2)
    for via in ("n1", "n2"):
        listed = cluster.listed(via)
        assert set(listed) == set(ids.values())
        for name, node_id in ids.items():
            entry = listed[node_id]
            assert entry["labels"] == {"role": name}
            assert entry["address"] == f"127.0.0.1:{cluster.daemons[name].port}"
            assert entry["cpus"] == os.cpu_count() and entry["free_slots"] == -1
            assert 0 < float(str(entry["lease_left_seconds"])) <= TTL_S
    # a viewer may read the registry too
    assert set(cluster.listed("n1", "--node", "viewer")) == set(ids.values())


# slow (a UI of its own): its fast check is tests/unit/ui/test_node_pages.py
@pytest.mark.slow
def test_the_web_uis_nodes_page_lists_the_cluster(cluster: Cluster) -> None:
    n1 = cluster.daemons["n1"]
    ui = start_ui(n1)
    try:
        browser = Browser(ui)
        assert browser.sign_in(mint(n1, "viewer")).status == 303
        ids = {cluster.node_id(name) for name in cluster.daemons}
        deadline = time.monotonic() + 10
        while True:  # both leases, as the registry has them
            page = browser.get("/nodes").body
            shown = set(re.findall(r"<tr><td>([\w-]+)</td><td>127\.0\.0\.1:", page))
            if shown == ids:
                break
            assert time.monotonic() < deadline, page[-2000:]
            time.sleep(0.2)
        assert 'id="cluster"' in page and "Cluster test (as " in page
    finally:
        ui.stop()


def test_any_node_lists_and_finds_every_nodes_jobs(cluster: Cluster) -> None:
    ran = {}
    for name, daemon in cluster.daemons.items():
        res = daemon.jobs().RunJob(pb.RunJobRequest(command="echo", args=[name]))
        wait_status(daemon.jobs(), res.jobUuid, {"COMPLETED"})
        ran[res.jobUuid] = cluster.node_id(name)
    for via in cluster.daemons:
        deadline = time.monotonic() + 10
        while True:  # the other node's record reaches the store a moment after the job ends
            res = cluster.daemons[via].rnx("list", "--json")
            assert res.returncode == 0, res.stderr
            listed = {j["id"]: (j["node_id"], j["status"]) for j in json.loads(res.stdout)["jobs"]}
            if listed == {job_id: (node, "COMPLETED") for job_id, node in ran.items()}:
                break
            assert time.monotonic() < deadline, listed
            time.sleep(0.2)
    n2_job = next(job_id for job_id, node in ran.items() if node == cluster.node_id("n2"))
    status = cluster.daemons["n1"].rnx("status", n2_job[:13], "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert (doc["id"], doc["node_id"]) == (n2_job, cluster.node_id("n2"))
    # the v1.0.9 call too: ListJobs answers for the whole cluster
    jobs = cluster.daemons["n1"].jobs().ListJobs(pb.EmptyRequest()).jobs
    assert {j.uuid: j.nodeId for j in jobs} == ran
    # asked through both nodes at once, each job is listed once
    config = cluster.daemons["n1"].root.parent.parent / "both.yml"
    nodes = {name: d.node("default") for name, d in cluster.daemons.items()}
    config.write_text(yaml.safe_dump({"nodes": nodes, "nodeTimeout": "20s"}))
    config.chmod(0o600)
    both = cluster.daemons["n1"].rnx("--config", str(config), "--node", "all", "list", "-q")
    assert both.returncode == 0, both.stderr
    assert sorted(both.stdout.decode().split()) == sorted(ran)


def test_a_killed_node_drops_out_once_its_lease_lapses(cluster: Cluster) -> None:
    gone = cluster.node_id("n2")
    cluster.daemons["n2"].kill9()
    killed_at = time.monotonic()
    while gone in cluster.listed("n1"):
        assert time.monotonic() - killed_at < TTL_S + 5, "the lease of a dead node stays"
        time.sleep(0.2)
    assert set(cluster.listed("n1")) == {cluster.node_id("n1")}


def test_a_place_on_a_cluster_without_placement_is_refused(cluster: Cluster) -> None:
    import grpc

    with pytest.raises(grpc.RpcError) as err:
        cluster.daemons["n1"].jobs().RunJob(pb.RunJobRequest(command="true", place="node=x"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cluster.placement" in str(err.value.details())
