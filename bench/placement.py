"""Placement over three nodes of one cluster (cluster.placement) sharing a
redis-server with AOF (appendfsync always):

    .venv/bin/python bench/placement.py [--quick]

1. Accepted to running: RunJob of `date +%s.%N` to node a, the time from the
   call to the instant the job's process printed, for a placed job against,
   alternated in the same run, a job that stays local (stdin: true keeps it
   on the node asked); one job at a time, nodes idle; p50 and p99.
2. Throughput: N `true` jobs, a third sent to each node by a client process
   of its own (50 grpc.aio callers on 5 channels; bench/submit_clients.py),
   the processes released together: RunJob/s accepted cluster-wide (first
   send to last answer), then `true` jobs/s completed (first send to last
   end) and each node's share; against the same jobs kept local (stdin: true).
3. The accept path alone: N more RunJobs placed on a label no node has (they
   stay queued, nothing launches): RunJob/s accepted, and the host's CPU per
   accepted RunJob (clients, daemons, helpers and Redis together, from
   /proc/stat over the sending window), with the rate that CPU allows on
   this host's cores at best.
4. Recovery after kill -9 of node c (lease TTL 3 s): its running jobs FAILED
   "node lost", and its claimed job RUNNING elsewhere, timed from the kill.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil
from common import (
    Daemon,
    Report,
    enter_private_netns,
    p50,
    p99,
    parse_args,
    require_root,
    start_daemon,
)
from submit_clients import Sent, run_clients

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.cluster import placement as p
from joblet.cluster.lease import registry_prefix

REDIS_PORT = 6391
TTL_S = 3.0
PREFIX = registry_prefix("bench")
CALLERS = 50  # per client process, one process per node
# A job that failed ends the wait too: it is counted (and named) apart.
FINAL = {"COMPLETED", "FAILED", "STOPPED"}
NOWHERE = "label=name=nowhere"  # a label no node has: such jobs stay queued


def start_redis(tmp: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    args = ["--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp),
            "--appendonly", "yes", "--appendfsync", "always"]  # fmt: skip
    proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", REDIS_PORT)) == 0:
                return proc
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)


def start_three(tmp: Path) -> dict[str, Daemon]:
    daemons: dict[str, Daemon] = {}
    for n, name in enumerate(("a", "b", "c")):
        sections = {
            "state": {"backend": "redis", "redis": {"port": REDIS_PORT, "keyPrefix": f"{name}:"}},
            "cluster": {"name": "bench", "placement": True, "leaseTtl": f"{TTL_S}s",
                        "renewEvery": "1s", "labels": {"name": name}},
            "network": {"bridgeCidr": f"10.21{n}.0.0/24", "isolatedPool": f"10.22{n}.0.0/24"},
        }  # fmt: skip
        daemons[name] = start_daemon(tmp / name, sections=sections)
    return daemons


def node_id(daemon: Daemon) -> str:
    return (daemon.root / "state" / "node-id").read_text().strip()


class Store:
    def __init__(self) -> None:
        import redis

        self.client = redis.Redis(port=REDIS_PORT)

    def field(self, job_id: str, name: str) -> str:
        raw = self.client.hget(p.job_key(PREFIX, job_id), name)
        return raw.decode() if isinstance(raw, bytes) else ""

    def wait(self, ids: list[str], wanted: set[str], timeout: float) -> float:
        """When every job reached one of `wanted` (time.monotonic())."""
        deadline = time.monotonic() + timeout
        while True:
            pipe = self.client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hget(p.job_key(PREFIX, job_id), "state")
            states = [(s or b"").decode() for s in pipe.execute()]
            if set(states) <= wanted:
                return time.monotonic()
            assert time.monotonic() < deadline, Counter(states)
            time.sleep(0.01)


def printed_at(stub: pb_grpc.JobServiceStub, job_id: str) -> float:
    deadline = time.monotonic() + 60
    while True:
        try:
            status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status
        except Exception:  # not on its node yet
            status = ""
        if status == "COMPLETED":
            out = b"".join(c.payload for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id)))
            return float(out.split()[-1])
        assert time.monotonic() < deadline, f"job {job_id}: {status}"
        time.sleep(0.005)


def latency(daemons: dict[str, Daemon], store: Store, runs: int) -> dict[str, list[float]]:
    stubs = {node_id(d): d.jobs() for d in daemons.values()}
    a = daemons["a"].jobs()
    out: dict[str, list[float]] = {"placed": [], "local": []}
    for _ in range(runs):
        for kind in ("placed", "local"):
            t0 = time.time()
            res = a.RunJob(pb.RunJobRequest(command="date", args=["+%s.%N"],
                                            stdin=kind == "local"))  # fmt: skip
            if kind == "local":
                at = printed_at(a, res.jobUuid)
            else:
                store.wait([res.jobUuid], {"COMPLETED"}, 60)
                at = printed_at(stubs[store.field(res.jobUuid, "node")], res.jobUuid)
            out[kind].append(at - t0)
    return out


def _targets(daemons: dict[str, Daemon]) -> list[tuple[Path, str]]:
    return [(d.rnx_config, d.address) for d in daemons.values()]


def _accepted_rate(sent: list[Sent]) -> tuple[float, float]:
    """RunJob/s accepted over all clients, and when the first was sent."""
    start = min(s.first_send for s in sent)
    total = sum(len(s.ids) for s in sent)
    return total / (max(s.last_answer for s in sent) - start), start


def local_throughput(daemons: dict[str, Daemon], count: int) -> tuple[float, float]:
    """The baseline: the same jobs kept on the node asked (stdin: true)."""
    sent = run_clients(_targets(daemons), count // len(daemons), CALLERS, local=True)
    accepted, start = _accepted_rate(sent)
    for daemon, part in zip(daemons.values(), sent, strict=True):
        waiting, stub = set(part.ids), daemon.jobs()
        while waiting:  # one listing a round, not a status call per job
            listed = stub.ListJobs(pb.EmptyRequest()).jobs
            waiting -= {job.uuid for job in listed if job.status in FINAL}
            time.sleep(0.05 if waiting else 0)
    total = sum(len(part.ids) for part in sent)
    return accepted, total / (time.time() - start)


def throughput(
    daemons: dict[str, Daemon], store: Store, count: int
) -> tuple[float, float, dict[str, int], Counter[str]]:
    """RunJob/s accepted, jobs/s ended, the jobs per node, and why the jobs
    that did not complete ended."""
    sent = run_clients(_targets(daemons), count // len(daemons), CALLERS)
    accepted, start = _accepted_rate(sent)
    every = [j for part in sent for j in part.ids]
    store.wait(every, FINAL, 1800)
    done = time.time() - start
    by_node = {node_id(d): n for n, d in daemons.items()}
    share = Counter(by_node[store.field(j, "node")] for j in every)
    failed = Counter(
        store.field(j, "reason") for j in every if store.field(j, "state") != "COMPLETED"
    )
    return accepted, len(every) / done, dict(share), failed


def _host_busy_s() -> float:
    """CPU seconds the host has spent on all its cores, idle and iowait left out."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of `pid` and every process below it (a daemon: its
    helpers and launcher too)."""
    try:
        top = psutil.Process(pid)
        procs = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


class BusySampler:
    """Every 20 ms: the host's busy CPU seconds and those of each group of
    process trees, with their time.time(), so a window known only afterwards
    (the clients' first send to last answer) can be cut out, leaving out the
    clients' start and connect."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.samples: list[tuple[float, float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            each = {name: sum(map(_tree_cpu_s, pids)) for name, pids in self.groups.items()}
            self.samples.append((time.time(), _host_busy_s(), each))

    def between(self, start: float, end: float) -> tuple[float, dict[str, float]]:
        """The host's busy seconds over the window, and each group's."""
        self._stop.set()
        self._thread.join()
        before = max((s for s in self.samples if s[0] <= start), default=self.samples[0])
        after = min((s for s in self.samples if s[0] >= end), default=self.samples[-1])
        return after[1] - before[1], {n: after[2][n] - before[2][n] for n in self.groups}


@dataclass
class AcceptCost:
    rate: float  # RunJob/s accepted, nothing launched
    per_job_s: dict[str, float]  # CPU seconds per accepted RunJob: host, and by part


def accept_cost(
    daemons: dict[str, Daemon], redis: subprocess.Popen[bytes], count: int
) -> AcceptCost:
    """RunJob/s accepted with nothing launched, and the CPU seconds per
    accepted RunJob over the sending window: the host's, the daemons' (with
    their helpers), Redis's, and the rest (the clients, mostly)."""
    groups = {"daemons": [d.proc.pid for d in daemons.values()], "redis": [redis.pid]}
    sampler = BusySampler(groups)
    sent = run_clients(_targets(daemons), count // len(daemons), CALLERS, place=NOWHERE)
    accepted, start = _accepted_rate(sent)
    busy, parts = sampler.between(start, max(s.last_answer for s in sent))
    total = sum(len(s.ids) for s in sent)
    per_job = {"host": busy / total, **{n: cpu / total for n, cpu in parts.items()}}
    per_job["clients and the rest"] = per_job["host"] - sum(parts.values()) / total
    return AcceptCost(accepted, per_job)


def recovery(daemons: dict[str, Daemon], store: Store) -> tuple[float, float]:
    victim = daemons["c"]
    lost = node_id(victim)
    a = daemons["a"].jobs()
    pinned = pb.RunJobRequest(command="sleep", args=["600"], place=f"node={lost}")
    running = [a.RunJob(pinned).jobUuid for _ in range(3)]
    store.wait(running, {"RUNNING"}, 60)
    claimed = a.RunJob(pb.RunJobRequest(command="sleep", args=["1"], place="label=name=z")).jobUuid
    key = p.job_key(PREFIX, claimed)  # as the victim's claim script would have left it
    store.client.hset(key, mapping={"state": "CLAIMED", "node": lost,
                                    "stream": p.stream_key(PREFIX, "any")})  # fmt: skip
    store.client.hincrby(key, "token", 1)
    store.client.sadd(p.owned_key(PREFIX, lost), claimed)
    killed = time.monotonic()
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    lost_at = store.wait(running, {"FAILED"}, 60) - killed
    moved_at = store.wait([claimed], {"RUNNING", "COMPLETED"}, 60) - killed
    return lost_at, moved_at


def _accept_figures(report: Report, queued: AcceptCost) -> None:
    cores = len(os.sched_getaffinity(0))
    report.figures["RunJob/s accepted, 3 nodes, nothing launched"] = queued.rate
    for part, seconds in queued.per_job_s.items():
        report.figures[f"CPU per accepted RunJob, {part}, ms"] = seconds * 1000
    report.baselines[f"RunJob/s that CPU allows on {cores} cores"] = (
        cores / queued.per_job_s["host"]
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    runs, count = (40, 600) if args.quick else (200, 3000)
    report = Report("placement", args.quick)
    require_root()
    enter_private_netns()
    tmp = Path(tempfile.mkdtemp(prefix="joblet-bench-"))
    redis = start_redis(tmp)
    daemons: dict[str, Daemon] = {}
    try:
        daemons = start_three(tmp)
        store = Store()
        time.sleep(TTL_S)  # every node's lease and groups in place
        lat = latency(daemons, store, runs)
        accepted, completed, share, failed = throughput(daemons, store, count)
        local_accepted, local_completed = local_throughput(daemons, count)
        queued = accept_cost(daemons, redis, count)
        lost_at, moved_at = recovery(daemons, store)
    finally:
        for daemon in daemons.values():
            daemon.stop()
        redis.terminate()
        redis.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    extra50 = (p50(lat["placed"]) - p50(lat["local"])) * 1000
    extra99 = (p99(lat["placed"]) - p99(lat["local"])) * 1000
    report.figures["placed accepted->running p50 ms"] = p50(lat["placed"]) * 1000
    report.figures["placed accepted->running p99 ms"] = p99(lat["placed"]) * 1000
    report.baselines["local accepted->running p50 ms"] = p50(lat["local"]) * 1000
    report.baselines["local accepted->running p99 ms"] = p99(lat["local"]) * 1000
    report.figures["placement adds p50 ms"] = extra50
    report.figures["placement adds p99 ms"] = extra99
    report.check("p50", extra50 <= 5, "<= 5 ms over a local start")
    report.check("p99", extra99 <= 25, "<= 25 ms over a local start")
    report.figures["RunJob/s accepted, 3 nodes"] = accepted
    report.figures["true jobs/s completed, 3 nodes"] = completed
    report.baselines["local RunJob/s accepted, 3 nodes"] = local_accepted
    report.baselines["local true jobs/s completed, 3 nodes"] = local_completed
    report.check("accepted", accepted >= 1500, ">= 1,500 RunJob/s")
    report.check("completed", completed >= 300, ">= 300 true jobs/s")
    _accept_figures(report, queued)
    report.figures["kill -9: running jobs FAILED after s"] = lost_at
    report.figures["kill -9: claimed job RUNNING elsewhere after s"] = moved_at
    report.check("recovery", max(lost_at, moved_at) <= TTL_S + 2, f"<= {TTL_S + 2:g} s")
    mean = statistics.mean(share.values())
    report.notes.append(f"share per node: {sorted(share.values())} (mean {mean:.0f})")
    report.notes.append(f"{runs} latency samples each way, alternated; {count} jobs")
    for reason, n in failed.items():
        report.notes.append(f"placed jobs that did not complete: {n} ({reason})")
    report.check("all completed", not failed, "every placed true job COMPLETED")
    report.emit()


if __name__ == "__main__":
    main()
