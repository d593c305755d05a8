"""Faults of a placing node, each daemon in a network namespace of its own
(veths to a test bridge, redis-server with AOF on it; the tests' world in
tests/integration/cluster_netns.py), lease TTL 3 s:

    .venv/bin/python bench/cluster_faults.py [--quick]

1. Lost: a job running on the node FAILED "node lost" in the store, timed
   from the fault, for a partition (its veth down) and a hang (SIGSTOP),
   against kill -9 of the node (daemon and launcher) as the baseline;
   median and max of N rounds each.
2. Back: from the end of a partition or a hang to the node's copy of that
   job killed and noted on the job (`late:NODE`).
3. Cancel of a placed job no node took, through another node than the one
   that accepted it, against CancelJob of a scheduled job on its own node
   (the baseline: a cancel that needs no store); p50 of N.
4. ListJobs through node b: what N placed jobs queued (no node serves their
   stream) add to its p50, against what N finished jobs of node a add (the
   baseline: records of another node, read from the same store).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from common import Report, p50, parse_args, require_root

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from integration.cluster_netns import SplitCluster

from joblet.api import joblet_pb2 as pb

TTL_S = 3.0


def lost_after(split: SplitCluster, kind: str, rounds: int) -> tuple[list[float], list[float]]:
    """(fault -> FAILED, return -> copy killed and noted) per round."""
    fault: dict[str, Callable[[str], None]] = {
        "crash": split.crash, "partition": split.partition, "hang": split.hang,
    }  # fmt: skip
    lost, back = [], []
    for _ in range(rounds):
        node = split.node_id("b")
        job = split.run("a", 1, command="sleep", args=["60"], place=f"node={node}")
        split.wait_states(job, {"RUNNING"}, timeout=30)
        fault[kind]("b")
        start = time.monotonic()
        split.wait_states(job, {"FAILED"}, timeout=TTL_S + 20)
        lost.append(time.monotonic() - start)
        start = time.monotonic()
        if kind == "crash":
            split.daemons["b"].restart()
        else:
            (split.heal if kind == "partition" else split.wake)("b")
            deadline = time.monotonic() + 60
            while f"late:{node}" not in split.records(job)[0]:
                assert time.monotonic() < deadline, f"{kind}: the node did not note job {job}"
                time.sleep(0.02)
            back.append(time.monotonic() - start)
        while not split.lease_alive("b"):
            time.sleep(0.05)
    return lost, back


def cancel_times(split: SplitCluster, count: int) -> tuple[list[float], list[float]]:
    via, local = split.daemons["b"].jobs(), split.daemons["a"].jobs()
    placed, scheduled = [], []
    for _ in range(count):
        job_id = split.run("a", 1, command="true", place="label=role=nobody")[0]
        start = time.perf_counter()
        assert via.CancelJob(pb.CancelJobReq(uuid=job_id)).status == "CANCELED"
        placed.append(time.perf_counter() - start)
        res = local.RunJob(pb.RunJobRequest(command="true", schedule="1h", stdin=True))
        start = time.perf_counter()
        assert local.CancelJob(pb.CancelJobReq(uuid=res.jobUuid)).status == "CANCELED"
        scheduled.append(time.perf_counter() - start)
    return placed, scheduled


def list_times(split: SplitCluster, count: int) -> list[float]:
    stub = split.daemons["b"].jobs()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        stub.ListJobs(pb.EmptyRequest())
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    args = parse_args(__doc__ or "")
    require_root()
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    rounds, samples = (2, 20) if args.quick else (5, 50)
    report = Report("cluster_faults", args.quick)
    split = SplitCluster(Path(tempfile.mkdtemp(prefix="bench-faults-")), "faults", TTL_S, binary)
    try:
        split.start(["a", "b"])
        for kind in ("crash", "partition", "hang"):
            lost, back = lost_after(split, kind, rounds)
            target = report.baselines if kind == "crash" else report.figures
            target[f"{kind}: lost after, median s"] = statistics.median(lost)
            target[f"{kind}: lost after, max s"] = max(lost)
            if back:
                report.figures[f"{kind}: copy killed after return, median s"] = statistics.median(
                    back
                )
            report.check(f"{kind} lost within TTL + 2 s", max(lost) <= TTL_S + 2, "<= 5 s")
        placed, scheduled = cancel_times(split, samples)
        report.figures["cancel of a queued placed job via another node p50 ms"] = p50(placed) * 1e3
        report.baselines["cancel of a local scheduled job p50 ms"] = p50(scheduled) * 1e3
        many = 300 if args.quick else 1000
        bare = p50(list_times(split, samples))
        ran = split.run("b", many, command="true", place=f"node={split.node_id('a')}")
        done = Counter(split.wait_states(ran, {"COMPLETED", "FAILED"}, timeout=600))
        report.notes.append(f"the {many} jobs of node a ended: {dict(done)}")
        with_records = p50(list_times(split, samples))
        split.run("a", many, command="true", place="label=role=nobody")
        with_queued = p50(list_times(split, samples))
        report.figures[f"ListJobs: {many} queued placed jobs add, p50 ms"] = (
            with_queued - with_records
        ) * 1e3
        report.baselines[f"ListJobs: {many} finished jobs of a add, p50 ms"] = (
            with_records - bare
        ) * 1e3
    finally:
        split.close()
    report.notes.append(f"{rounds} rounds per fault, {samples} samples per call; lease TTL 3 s")
    report.emit()


if __name__ == "__main__":
    main()
