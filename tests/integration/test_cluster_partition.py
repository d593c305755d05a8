"""A partition of one node of a placement cluster under a steady load, each
daemon in a network namespace of its own joined to a test bridge (redis on
the bridge, in a hub namespace): the node's running jobs FAILED "node lost"
within the lease's TTL + 2 s, its claimed job runs elsewhere, no job is
launched twice, and once its veth is back its late writes are refused, its
copies of lost jobs killed and its account noted on each job."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from joblet.cluster import placement as p

from .cluster_netns import Load, SplitCluster
from .conftest import ROOT_NEEDED

pytestmark = [pytest.mark.integration, pytest.mark.privileged]
TTL_S = 2.0


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SplitCluster]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    cluster = SplitCluster(tmp_path_factory.mktemp("split"), "split", TTL_S, binary)
    try:
        cluster.start(["n1", "n2"])  # two: the slow chaos run has three
        yield cluster
    finally:
        cluster.close()


def test_a_partitioned_node_is_lost_in_time_and_refused_once_back(split: SplitCluster) -> None:
    victim, lost = "n2", split.node_id("n2")
    with Load(split, ["n1", "n2"], rate=25) as load:  # to the victim too, until cut
        held = split.run("n1", 2, command="sleep", args=["30"], place=f"node={lost}")
        short = split.run("n1", 1, command="sleep", args=["2"], place=f"node={lost}")
        split.wait_states(held + short, {"RUNNING"}, timeout=30)
        # A claim the victim holds and has not started: made by hand under its
        # name, as its claim script would.
        claimed = split.run("n1", 1, command="true", place="label=role=nobody")[0]

        def claim_for_victim(client: Any) -> None:
            key = p.job_key(split.prefix, claimed)
            client.hset(key, mapping={"state": "CLAIMED", "node": lost,
                                      "stream": p.stream_key(split.prefix, "any")})  # fmt: skip
            client.hincrby(key, "token", 1)
            client.sadd(p.owned_key(split.prefix, lost), claimed)

        split.redis_do(claim_for_victim)
        split.partition(victim)
        cut = time.monotonic()
        try:
            split.wait_states(held + short, {"FAILED"}, timeout=TTL_S + 10)
            took = time.monotonic() - cut
            split.wait_states([claimed], {"COMPLETED"}, timeout=30)
            assert not split.lease_alive(victim)
        finally:
            split.heal(victim)
        assert took <= TTL_S + 2 + 1.0, took  # (+ the test's polling)
        assert {r["reason"] for r in split.records(held + short)} == {p.NODE_LOST}
        deadline = time.monotonic() + 30
        while not split.lease_alive(victim):
            assert time.monotonic() < deadline, "the node did not come back"
            time.sleep(0.1)
        time.sleep(1.0)  # the load goes on with the node back
    note = f"late:{lost}"
    deadline = time.monotonic() + 30
    while not all(note in r for r in split.records(held + short)):
        assert time.monotonic() < deadline, split.records(held + short)
        time.sleep(0.2)
    records = split.records(held + short)
    assert [r["state"] for r in records] == ["FAILED"] * 3  # its late ends were refused
    assert all("killed on this node's return" in r[note] for r in records[:2]), records
    assert "exit code 0" in records[2][note] and "ended" in records[2][note], records[2]
    assert b"stale write refused" in split.daemons[victim].log_path.read_bytes()
    check_ran_once(split, load, held + short + [claimed], victim)
    assert claimed not in split.starts()[victim]


def check_ran_once(split: SplitCluster, load: Load, others: list[str], lost_node: str) -> None:
    """Every job accepted ran once; one a lost node had started as it was cut
    off is FAILED "node lost", never run again. The cut-off node's refusals
    say the store is away."""
    assert len(load.ids) > 50
    assert all(e.startswith("StatusCode.UNAVAILABLE") and "not queued" in e for e in load.errors)
    states = split.wait_states(load.ids, {"COMPLETED", "FAILED"}, timeout=60)
    starts = split.starts()
    total = sum(starts.values(), Counter())
    ran = load.ids + others
    assert all(total[j] == 1 for j in ran), [(j, total[j]) for j in ran if total[j] != 1]
    for job_id, state in zip(load.ids, states, strict=True):
        if state == "FAILED":
            assert job_id in starts[lost_node], job_id
            assert split.records([job_id])[0]["reason"] == p.NODE_LOST
