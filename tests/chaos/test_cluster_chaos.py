"""Twenty rounds of chaos over a placement cluster of three daemons, each in
a network namespace of its own (tests/integration/cluster_netns.py), under a
steady load of `true` jobs: each round one node, at random, crashes (kill -9
of the daemon and its launcher, then a restart), is cut off (its veth down)
or hangs (SIGSTOP), past its lease, then comes back. Checked: no job is
launched twice, every job accepted ends (COMPLETED, or FAILED "node lost"
when a lost node had started it), and the job running on the lost node each
round is FAILED "node lost" within the lease's TTL + 2 s, while a job there
that opted in to a retry on node loss runs again and completes, its copies
never running at the same time (the node's fence, or its launcher's while
the daemon hangs, kills the first before the retry starts).

Slow (about four minutes): run by `make test-all`; JOBLET_CHAOS_LONG=1 runs
more rounds. The default suite has the single-partition variant
(tests/integration/test_cluster_partition.py)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.cluster_netns import Load, SplitCluster
from integration.conftest import ROOT_NEEDED

from joblet.cluster import placement as p

from .support import LONG

pytestmark = [pytest.mark.integration, pytest.mark.privileged, pytest.mark.chaos,
              pytest.mark.slow]  # fmt: skip
TTL_S = 2.0
ROUNDS = 60 if LONG else 20
SEED = int(os.environ.get("JOBLET_CHAOS_SEED", "17"))
FAULTS = ("crash", "partition", "hang")


@pytest.fixture
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SplitCluster]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    cluster = SplitCluster(tmp_path_factory.mktemp("chaos"), "chaos", TTL_S, binary)
    try:
        cluster.start(["n1", "n2", "n3"])
        yield cluster
    finally:
        cluster.close()


class Copies:
    """The most copies of each watched `sleep ARG` command seen at once."""

    def __init__(self) -> None:
        self.args: set[str] = set()
        self.most: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Copies:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            seen: Counter[str] = Counter()
            for pid in filter(str.isdigit, os.listdir("/proc")):
                with contextlib.suppress(OSError):
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    # the command itself, not the tini that runs it
                    if len(argv) == 3 and argv[0].endswith(b"sleep"):
                        seen[argv[1].decode()] += 1
            for arg in self.args & seen.keys():
                self.most[arg] = max(self.most[arg], seen[arg])


def _fault(split: SplitCluster, kind: str, name: str) -> None:
    {"crash": split.crash, "partition": split.partition, "hang": split.hang}[kind](name)


def _recover(split: SplitCluster, kind: str, name: str) -> None:
    if kind == "crash":
        split.daemons[name].restart()
    elif kind == "partition":
        split.heal(name)
    else:
        split.wake(name)
    deadline = time.monotonic() + 60
    while not split.lease_alive(name):
        assert time.monotonic() < deadline, f"{name} did not come back after a {kind}"
        time.sleep(0.1)


@pytest.mark.timeout(1800)
def test_rounds_of_crashes_partitions_and_hangs_lose_and_repeat_nothing(
    split: SplitCluster,
) -> None:
    pick = random.Random(SEED)
    names = list(split.daemons)
    pinned: list[str] = []
    lost_in: list[float] = []
    faults: Counter[str] = Counter()
    retried: list[str] = []
    began = time.monotonic()
    with Load(split, names, rate=8) as load, Copies() as copies:
        for round_ in range(ROUNDS):
            victim, kind = pick.choice(names), pick.choice(FAULTS)
            faults[kind] += 1
            node = split.node_id(victim)
            sender = pick.choice([n for n in names if n != victim])
            job = split.run(sender, 1, command="sleep", args=["60"], place=f"node={node}")
            arg = f"8.{round_:03d}7"  # outlives the fault: a retry that came early would overlap
            copies.args.add(arg)
            retry = split.run(sender, 1, command="sleep", args=[arg], place=f"node={node}",
                              retryOnNodeLoss=True)  # fmt: skip
            split.wait_states(job + retry, {"RUNNING"}, timeout=30)
            pinned += job
            retried += retry
            _fault(split, kind, victim)
            cut = time.monotonic()
            try:
                split.wait_states(job, {"FAILED"}, timeout=TTL_S + 15)
                lost_in.append(time.monotonic() - cut)
            finally:
                _recover(split, kind, victim)
        # every retry runs on its node once back, and ends
        try:
            split.wait_states(retried, {"COMPLETED"}, timeout=120)
        except AssertionError:
            records = zip(retried, split.records(retried), strict=True)
            left = {j: r for j, r in records if r.get("state") != "COMPLETED"}
            raise AssertionError(f"retried jobs that did not complete: {left}") from None
    assert {r["reason"] for r in split.records(pinned)} == {p.NODE_LOST}
    assert copies.most and max(copies.most.values()) == 1, copies.most
    states = split.wait_states(load.ids, {"COMPLETED", "FAILED"}, timeout=300)
    starts = split.starts()
    total = sum(starts.values(), Counter())
    twice = [j for j, n in total.items() if n > 1 and j not in retried]
    assert not twice, twice
    assert not [j for j in load.ids + pinned if total[j] != 1], total
    assert all(total[j] >= 1 for j in retried)
    failed = [j for j, s in zip(load.ids, states, strict=True) if s == "FAILED"]
    reasons = [r["reason"] for r in split.records(failed)] if failed else []
    assert set(reasons) <= {p.NODE_LOST}, reasons
    print(
        f"\nchaos: {ROUNDS} rounds {dict(faults)} in {time.monotonic() - began:.0f}s;"
        f" {len(load.ids)} jobs accepted, {len(failed)} FAILED node lost, the rest"
        f" COMPLETED, none launched twice; {len(load.errors)} RunJob refused by a faulted"
        f" node; a lost node's running job FAILED within max {max(lost_in):.2f}s"
        f" (median {sorted(lost_in)[len(lost_in) // 2]:.2f}s, TTL {TTL_S:g}s); {len(retried)}"
        f" jobs that may be retried all COMPLETED after {sum(total[j] for j in retried)}"
        f" starts, never two copies at once"
    )
    assert max(lost_in) <= TTL_S + 2 + 1.0, lost_in
