"""Placement over three real daemons of one cluster (cluster.placement) and a
redis-server with AOF (appendfsync always), all in one network namespace of
the test's own: jobs sent to any node run once each, spread over the nodes;
a node killed with SIGKILL has its running jobs FAILED "node lost" and its
claimed ones run elsewhere; a stale token's writes are refused, and a node
back from a hang kills its copy of a job the cluster moved on; a job no node
has taken is listed and canceled through any node (a cancel never lets a
claim start too); GPU jobs go only to the node with GPUs free (n3, fake GPUs
of a static inventory); with Redis away RunJob answers UNAVAILABLE, and a
Redis restart keeps every job it acknowledged."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.cluster import placement as p
from joblet.cluster.lease import registry_prefix
from joblet.testing.gpus import FAKE_GPUS, make_driver_tree, make_fake_host

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, wait_status
from .netns import Netns, in_netns
from .test_cluster_registry import REDIS_PORT, _wait_redis

pytestmark = [pytest.mark.integration, pytest.mark.privileged]
TTL_S = 2.0
PREFIX = registry_prefix("place")
STARTED = re.compile(rb"placement: job ([0-9a-f-]{36}) started here")
T = TypeVar("T")


@dataclass
class Cluster:
    world: Netns
    tmp: Path
    daemons: dict[str, RunningDaemon]
    redis: subprocess.Popen[bytes] | None = None
    binary: str = ""
    killed: set[str] = field(default_factory=set)

    def node_id(self, name: str) -> str:
        return (self.daemons[name].root / "state" / "node-id").read_text().strip()

    def redis_do(self, fn: Callable[[Any], T]) -> T:
        import redis

        def call() -> T:
            client = redis.Redis(port=REDIS_PORT, socket_timeout=10)
            try:
                return fn(client)
            finally:
                client.close()

        return in_netns(self.world.netns, call)

    def start_redis(self) -> None:
        args = ["--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--dir", str(self.tmp),
                "--save", "", "--appendonly", "yes", "--appendfsync", "always"]  # fmt: skip
        self.redis = subprocess.Popen(
            ["nsenter", f"--net={self.world.netns}", self.binary, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_redis(self.world, self.redis)

    def stop_redis(self) -> None:
        if self.redis is not None and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait(timeout=10)

    def states(self, ids: list[str]) -> list[str]:
        def read(client: Any) -> list[str]:
            pipe = client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hget(p.job_key(PREFIX, job_id), "state")
            return [(s or b"").decode() for s in pipe.execute()]

        return self.redis_do(read)

    def wait_states(self, ids: list[str], wanted: set[str], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            states = self.states(ids)
            if set(states) <= wanted:
                return states
            assert time.monotonic() < deadline, Counter(states)
            time.sleep(0.2)

    def starts(self) -> dict[str, Counter[str]]:
        """Per node, how often its log says it started each job."""
        return {
            name: Counter(m.decode() for m in STARTED.findall(d.log_path.read_bytes()))
            for name, d in self.daemons.items()
        }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    tmp = tmp_path_factory.mktemp("placement")
    world = Netns()
    cluster = Cluster(world, tmp, {}, binary=binary)
    try:
        cluster.start_redis()
        for n, name in enumerate(("n1", "n2", "n3")):
            sections = {
                "state": {"backend": "redis",
                          "redis": {"port": REDIS_PORT, "keyPrefix": f"{name}:"}},
                "cluster": {"name": "place", "leaseTtl": f"{TTL_S}s", "renewEvery": "500ms",
                            "labels": {"role": name}, "placement": True},
                "network": {"bridgeCidr": f"10.23{n}.0.0/24", "isolatedPool": f"10.24{n}.0.0/24"},
            }  # fmt: skip
            if name == "n3":  # the one node with GPUs (fake ones: a static inventory)
                gpu = make_fake_host(tmp / "gpu-host")
                sections["gpu"] = {**gpu, "driverPaths": [str(make_driver_tree(tmp / "drv"))]}
            cluster.daemons[name] = launch_daemon(Path(tmp / name), sections, world=world)
        yield cluster
    finally:
        for daemon in cluster.daemons.values():
            daemon.stop()
        cluster.stop_redis()
        world.close()


def _run(daemon: RunningDaemon, count: int, **fields: Any) -> list[str]:
    stub = daemon.jobs()
    ids = []
    for _ in range(count):
        res = stub.RunJob(pb.RunJobRequest(**fields))
        assert res.status == "QUEUED", res
        ids.append(res.jobUuid)
    return ids


def test_jobs_sent_to_any_node_spread_and_start_once_each(cluster: Cluster) -> None:
    names = list(cluster.daemons)
    stubs = {name: cluster.daemons[name].jobs() for name in names}
    ids = []
    for i in range(300):  # round-robin over the three nodes
        res = stubs[names[i % 3]].RunJob(pb.RunJobRequest(command="true"))
        assert res.status == "QUEUED" and res.jobUuid
        ids.append(res.jobUuid)
    cluster.wait_states(ids, {"COMPLETED"}, timeout=120)
    starts = cluster.starts()
    total = sum(starts.values(), Counter())
    assert sorted(total) == sorted(ids)
    assert max(total.values()) == 1, [j for j, n in total.items() if n > 1]
    assert all(starts[name] for name in names), {n: len(c) for n, c in starts.items()}
    # a claimed entry is deleted from its stream: the stream holds what waits
    assert cluster.redis_do(lambda c: c.xlen(p.stream_key(PREFIX, "any"))) == 0
    # each job is its node's, under the id RunJob gave: GetJobStatus finds it anywhere
    some = ids[0]
    owner = next(n for n in names if some in starts[n])
    res = stubs[names[(names.index(owner) + 1) % 3]].GetJobStatus(pb.GetJobStatusReq(uuid=some))
    assert (res.uuid, res.status, res.nodeId) == (some, "COMPLETED", cluster.node_id(owner))


def test_a_pinned_job_runs_on_its_node_and_a_bad_place_is_refused(cluster: Cluster) -> None:
    target = cluster.node_id("n2")
    ids = _run(cluster.daemons["n1"], 5, command="true", place=f"node={target}")
    ids += _run(cluster.daemons["n3"], 5, command="true", place="label=role=n2")
    cluster.wait_states(ids, {"COMPLETED"}, timeout=60)
    assert set(ids) <= set(cluster.starts()["n2"])
    with pytest.raises(grpc.RpcError) as err:
        cluster.daemons["n1"].jobs().RunJob(pb.RunJobRequest(command="true", place="nowhere"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "node=ID or label=KEY=VALUE" in str(err.value.details())
    res = cluster.daemons["n1"].rnx("run", "--place", "bogus", "true")
    assert res.returncode != 0 and b"label=KEY=VALUE" in res.stderr
    assert b"Traceback" not in res.stderr


def test_a_stale_token_cannot_start_or_finish_a_job(cluster: Cluster) -> None:
    """The fencing itself, against the real scripts: a claim re-queued by the
    janitor (its node's lease gone) can neither start nor record an end."""
    job_id = "00000000-0000-4000-8000-00000000f00d"
    ghost = "ghost-node"
    key, stream = p.job_key(PREFIX, job_id), p.stream_key(PREFIX, "node:nobody")
    owned = p.owned_key(PREFIX, ghost)
    lease = f"{PREFIX}node:{ghost}"
    listed = p.listed_key(PREFIX)

    def play(client: Any) -> list[Any]:
        submit, claim = client.register_script(p.SUBMIT), client.register_script(p.CLAIM)
        start, finish = client.register_script(p.START), client.register_script(p.FINISH)
        reclaim = client.register_script(p.RECLAIM)
        client.xgroup_create(stream, p.GROUP, "0", mkstream=True)
        assert submit([key, stream, listed], [job_id, b"req", stream, "0", "1"]) == 1
        entry = client.xreadgroup(p.GROUP, ghost, {stream: ">"}, count=1)[0][1][0][0]
        token, _ = claim([key, stream, owned], [p.GROUP, entry, ghost, job_id])
        out = [start([key, lease, owned], [token, ghost, job_id])]  # no lease: -1
        client.set(lease, b"{}", px=60_000)
        out.append(start([key, lease, owned], [token + 1, ghost, job_id]))  # wrong token: 0
        client.delete(lease)
        out.append(reclaim([key, owned, lease, listed], [ghost, job_id]))  # re-queued: 1
        out.append(client.hget(key, "state"))
        client.set(lease, b"{}", px=60_000)  # the node is back, with its old token
        out.append(start([key, lease, owned], [token, ghost, job_id]))
        out.append(finish([key, owned, listed], [token, "COMPLETED", "exit code 0", job_id]))
        out.append(client.hget(key, "state"))
        client.delete(lease, key, stream)
        client.srem(listed, job_id)
        return out

    assert cluster.redis_do(play) == [-1, 0, 1, b"QUEUED", 0, 0, b"QUEUED"]


def test_an_entry_delivered_twice_claims_its_job_once(cluster: Cluster) -> None:
    """At least once delivery: a second entry for a job (an XADD retried, a
    re-queue racing a late read) is acked and dropped, not claimed again."""
    job_id = "00000000-0000-4000-8000-00000000beef"
    key, stream = p.job_key(PREFIX, job_id), p.stream_key(PREFIX, "node:twice")
    owned = p.owned_key(PREFIX, "twice")

    def play(client: Any) -> list[Any]:
        submit, claim = client.register_script(p.SUBMIT), client.register_script(p.CLAIM)
        client.xgroup_create(stream, p.GROUP, "0", mkstream=True)
        listed = p.listed_key(PREFIX)
        assert submit([key, stream, listed], [job_id, b"req", stream, "0", "1"]) == 1
        assert submit([key, stream, listed], [job_id, b"req", stream, "0", "1"]) == 0
        client.xadd(stream, {"id": job_id})  # the same job delivered again
        entries = client.xreadgroup(p.GROUP, "twice", {stream: ">"}, count=10)[0][1]
        got = [claim([key, stream, owned], [p.GROUP, e, "twice", job_id]) for e, _ in entries]
        pending = client.xpending(stream, p.GROUP)["pending"]
        token = client.hget(key, "token")
        client.delete(key, stream, owned)
        client.srem(listed, job_id)
        return [len(entries), [bool(g) for g in got], pending, token]

    assert cluster.redis_do(play) == [2, [True, False], 0, b"1"]


def test_a_cancel_beats_a_claim_not_yet_started_and_loses_to_a_start(cluster: Cluster) -> None:
    """The cancel script against the real claim and start: a claim not yet
    started loses its start; a started job is its node's to stop."""
    job_id = "00000000-0000-4000-8000-00000000cafe"
    racer = "racer-node"
    key, stream = p.job_key(PREFIX, job_id), p.stream_key(PREFIX, "node:racer")
    owned, listed = p.owned_key(PREFIX, racer), p.listed_key(PREFIX)
    lease = f"{PREFIX}node:{racer}"

    def play(client: Any) -> list[Any]:
        submit, claim = client.register_script(p.SUBMIT), client.register_script(p.CLAIM)
        start, cancel = client.register_script(p.START), client.register_script(p.CANCEL)
        delete = client.register_script(p.DELETE)
        client.xgroup_create(stream, p.GROUP, "0", mkstream=True)
        client.set(lease, b"{}", px=60_000)
        out: list[Any] = []
        for stage in ("claimed", "running"):
            client.delete(key)
            assert submit([key, stream, listed], [job_id, b"req", stream, "0", "1"]) == 1
            entry = client.xreadgroup(p.GROUP, racer, {stream: ">"}, count=1)[0][1][0][0]
            token, _ = claim([key, stream, owned], [p.GROUP, entry, racer, job_id])
            if stage == "running":
                out.append(start([key, lease, owned], [token, racer, job_id]))
            out.append(cancel([key], ["canceled by t", "1"]))
            out.append(start([key, lease, owned], [token, racer, job_id]))
            out.append([client.hget(key, "state"), client.sismember(owned, job_id)])
        out.append(delete([key, listed], [job_id]))  # RUNNING: not deleted
        client.hset(key, "state", "COMPLETED")
        out.append(cancel([key], ["canceled by t", "1"]))
        out.append([delete([key, listed], [job_id]), client.sismember(listed, job_id)])
        client.delete(lease, key, stream, owned)
        return out

    assert cluster.redis_do(play) == [
        [1, racer.encode()], 0, [b"CANCELED", 0],  # claimed, not started: the cancel wins
        1, [2, racer.encode()], 0, [b"RUNNING", 1],  # started: its node's to stop
        -1, [3, b"COMPLETED"], [1, 0],
    ]  # fmt: skip


def test_a_queued_placed_job_is_seen_and_canceled_through_any_node(cluster: Cluster) -> None:
    """No node has taken it (no node serves its stream): every node lists
    it, QUEUED with no node, and any node stops, cancels or deletes it."""
    n1, n2, n3 = (cluster.daemons[n].jobs() for n in ("n1", "n2", "n3"))
    first, second = _run(cluster.daemons["n1"], 2, command="sleep", args=["1"], name="waits",
                         place="label=role=nobody")  # fmt: skip
    res = n2.GetJobStatus(pb.GetJobStatusReq(uuid=first))
    assert (res.uuid, res.status, res.nodeId, res.command) == (first, "QUEUED", "", "sleep")
    assert "waiting for a node" in res.waitReason
    assert n2.GetJobStatus(pb.GetJobStatusReq(uuid=first[:13])).uuid == first  # a prefix too
    listed = {j.uuid: j for j in n3.ListJobs(pb.EmptyRequest()).jobs}
    assert listed[first].status == listed[second].status == "QUEUED"
    assert listed[first].nodeId == ""
    paged = [j.uuid for page in n2.ListJobPages(pb.ListJobPagesRequest()) for j in page.jobs]
    assert paged.count(first) == 1 and paged.count(second) == 1
    for stub, call in ((n2, "GetJobLogs"), (n3, "DeleteJob")):
        with pytest.raises(grpc.RpcError) as err:
            req = pb.GetJobLogsReq(uuid=first) if call == "GetJobLogs" else pb.DeleteJobReq(
                uuid=first)  # fmt: skip
            reply = getattr(stub, call)(req)
            list(reply) if call == "GetJobLogs" else None
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, call
    assert n3.CancelJob(pb.CancelJobReq(uuid=first)).status == "CANCELED"
    assert n2.StopJob(pb.StopJobReq(uuid=second)).status == "CANCELED"
    for stub in (n1, n2, n3):
        res = stub.GetJobStatus(pb.GetJobStatusReq(uuid=first))
        assert (res.status, res.nodeId) == ("CANCELED", "") and "canceled by" in res.endReason
    with pytest.raises(grpc.RpcError) as err:
        n1.CancelJob(pb.CancelJobReq(uuid=first))  # it has ended
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert n1.DeleteJob(pb.DeleteJobReq(uuid=first)).success
    with pytest.raises(grpc.RpcError) as err:
        n3.GetJobStatus(pb.GetJobStatusReq(uuid=first))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert second in {j.uuid for j in n1.ListJobs(pb.EmptyRequest()).jobs}
    assert cluster.states([first, second]) == ["", "CANCELED"]
    # the CLI, through a third node
    res = cluster.daemons["n3"].rnx("job", "status", second)
    assert res.returncode == 0 and b"CANCELED" in res.stdout, res


def test_cancels_racing_claims_either_win_or_lose_never_both(cluster: Cluster) -> None:
    """Jobs for one node, canceled through another as soon as a third
    accepted them: each is either CANCELED and never started, or started
    once and not CANCELED (the cancel answered with an error)."""
    import queue
    import threading

    sender, canceler = cluster.daemons["n1"].jobs(), cluster.daemons["n2"].jobs()
    place = f"node={cluster.node_id('n3')}"
    accepted: queue.Queue[str | None] = queue.Queue()
    outcomes: dict[str, str] = {}

    def send() -> None:
        for _ in range(40):
            accepted.put(sender.RunJob(pb.RunJobRequest(command="true", place=place)).jobUuid)

    def cancel() -> None:
        while (job_id := accepted.get()) is not None:
            try:
                outcomes[job_id] = canceler.CancelJob(pb.CancelJobReq(uuid=job_id)).status
            except grpc.RpcError as exc:  # lost: started, or being started
                outcomes[job_id] = str(exc.code())

    senders = [threading.Thread(target=send) for _ in range(3)]
    cancelers = [threading.Thread(target=cancel) for _ in range(2)]
    for thread in senders + cancelers:
        thread.start()
    for thread in senders:
        thread.join(timeout=120)
    for _ in cancelers:
        accepted.put(None)
    for thread in cancelers:
        thread.join(timeout=120)
    ids = list(outcomes)
    assert len(ids) == 120
    final = cluster.wait_states(ids, {"COMPLETED", "CANCELED", "FAILED"}, 60)
    failed = [j for j, s in zip(ids, final, strict=True) if s == "FAILED"]
    reasons = cluster.redis_do(lambda c: [c.hget(p.job_key(PREFIX, j), "reason") for j in failed])
    # started, then its node's lease lapsed (a host loaded enough to stall
    # a renewal past the 2 s TTL): still started once, not canceled
    assert set(reasons) <= {p.NODE_LOST.encode()}, list(zip(failed, reasons, strict=True))
    states = dict(zip(ids, final, strict=True))
    started = sum(cluster.starts().values(), Counter())
    for job_id, said in outcomes.items():
        assert (states[job_id] == "CANCELED") == (said == "CANCELED"), (job_id, said)
        assert started[job_id] == (0 if said == "CANCELED" else 1), (job_id, said)


def test_gpu_jobs_are_taken_only_by_a_node_with_free_gpus(cluster: Cluster) -> None:
    """GPU jobs sent to nodes without GPUs wait in the `gpu:N` streams until
    the one node with GPUs (two) has that many free; the others never read
    those streams."""
    gpu_node = cluster.node_id("n3")
    ones = _run(cluster.daemons["n1"], 3, command="sleep", args=["3"], gpu_count=1)
    deadline = time.monotonic() + 30
    while sorted(cluster.states(ones)) != ["QUEUED", "RUNNING", "RUNNING"]:
        assert time.monotonic() < deadline, cluster.states(ones)
        time.sleep(0.1)
    two = _run(cluster.daemons["n2"], 1, command="true", gpu_count=2)
    three = _run(cluster.daemons["n2"], 1, command="true", gpu_count=3)  # no node has 3
    time.sleep(0.5)  # n3's reads go on meanwhile
    # not claimed: no node has two free now (the third one-GPU job waits too)
    assert sorted(cluster.states(ones + two)) == ["QUEUED", "QUEUED", "RUNNING", "RUNNING"]
    cluster.wait_states(ones + two, {"COMPLETED"}, timeout=60)
    starts = cluster.starts()
    assert all(starts["n3"][j] == 1 for j in ones + two), starts["n3"]
    assert not any(starts[n][j] for n in ("n1", "n2") for j in ones + two)
    for count in (1, 2):  # the streams' only reader: the node with GPUs
        stream = p.stream_key(PREFIX, p.gpu_stream(count))
        readers = cluster.redis_do(lambda c, s=stream: c.xinfo_consumers(s, p.GROUP))
        assert {r["name"].decode() for r in readers} == {gpu_node}, (count, readers)
    gpu3 = p.stream_key(PREFIX, p.gpu_stream(3))  # no node with three: nobody reads it
    assert cluster.redis_do(lambda c: c.xinfo_groups(gpu3)) == []
    res = cluster.daemons["n1"].jobs().GetJobStatus(pb.GetJobStatusReq(uuid=three[0]))
    assert (res.status, res.nodeId, res.gpu_count) == ("QUEUED", "", 3)
    assert cluster.daemons["n1"].jobs().CancelJob(pb.CancelJobReq(uuid=three[0])).status == (
        "CANCELED"
    )
    assert len(FAKE_GPUS) == 2


def test_a_killed_node_its_running_jobs_fail_its_claims_run_elsewhere(cluster: Cluster) -> None:
    victim = "n3"
    lost = cluster.node_id(victim)
    running = _run(cluster.daemons["n1"], 2, command="sleep", args=["60"], place=f"node={lost}")
    cluster.wait_states(running, {"RUNNING"}, timeout=30)
    for job_id in running:  # in the node's own record too (what listings read)
        wait_status(cluster.daemons["n1"].jobs(), job_id, {"RUNNING"}, timeout=20)
    # A claim the victim took and had not started yet when it died: made by
    # hand under its name, as its claim script would.
    claimed = _run(cluster.daemons["n1"], 1, command="true", place="label=role=nobody")[0]

    def claim_for_victim(client: Any) -> None:
        key = p.job_key(PREFIX, claimed)
        client.hset(key, mapping={"state": "CLAIMED", "node": lost, "stream": p.stream_key(
            PREFIX, "any")})  # fmt: skip
        client.hincrby(key, "token", 1)
        client.sadd(p.owned_key(PREFIX, lost), claimed)

    cluster.redis_do(claim_for_victim)
    cluster.daemons[victim].kill9()
    killed_at = time.monotonic()
    cluster.killed.add(victim)
    states = cluster.wait_states(running, {"FAILED"}, timeout=TTL_S + 10)
    took = time.monotonic() - killed_at
    assert states == ["FAILED", "FAILED"]
    assert took <= TTL_S + 2 + 1.5, took  # the lease's TTL + 2 s (+ the test's polling)
    reasons = cluster.redis_do(lambda c: [c.hget(p.job_key(PREFIX, j), "reason") for j in running])
    assert reasons == [b"node lost", b"node lost"]
    cluster.wait_states([claimed], {"COMPLETED"}, timeout=30)
    survivors = cluster.starts()
    assert claimed in survivors["n1"] or claimed in survivors["n2"]
    # the lost node's own record (what listings read) says so too
    res = wait_status(cluster.daemons["n1"].jobs(), running[0], {"FAILED"}, timeout=10)
    assert res.endReason == "node lost"


def test_with_redis_away_run_job_is_unavailable_and_a_restart_keeps_what_was_acked(
    cluster: Cluster,
) -> None:
    held = _run(cluster.daemons["n1"], 50, command="true", place="label=role=nobody")
    cluster.stop_redis()  # SIGKILL: only what the AOF holds comes back
    try:
        with pytest.raises(grpc.RpcError) as err:
            cluster.daemons["n2"].jobs().RunJob(pb.RunJobRequest(command="true"), timeout=20)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "not queued" in str(err.value.details())
    finally:
        cluster.start_redis()
    assert cluster.states(held) == ["QUEUED"] * 50
    stream = p.stream_key(PREFIX, "label:role=nobody")
    listed = cluster.redis_do(lambda c: c.xrange(stream))
    assert {f[b"id"].decode() for _, f in listed} >= set(held)
    # and the nodes go on: a job sent now runs, also through a node whose
    # pooled connections Redis closed while they sat idle
    again = [job for name in ("n2", "n1") for job in _run(cluster.daemons[name], 1, command="true")]
    cluster.wait_states(again, {"COMPLETED"}, timeout=30)


SHORT_SLEEP = "1.013"  # an argument no other test's job sleeps for


def _sleeping(seconds: str) -> bool:
    """Whether some process runs `sleep SECONDS`."""
    wanted = f"sleep\0{seconds}\0".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().endswith(wanted):
                return True
    return False


class _Lifetime:
    """Watches for a `sleep SECONDS` process to come and go (a job's RUNNING
    in the store comes before its exec, so absence alone proves nothing)."""

    def __init__(self, seconds: str) -> None:
        self.seen = self.gone = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(seconds,), daemon=True)
        self._thread.start()

    def _watch(self, seconds: str) -> None:
        while not self._stop.wait(0.02):
            running = _sleeping(seconds)
            self.seen = self.seen or running
            if self.seen and not running:
                self.gone = True
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def test_sigstop_node_back_has_its_stale_writes_refused_and_kills_its_lost_copy(
    cluster: Cluster,
) -> None:
    """A node hung past its lease (SIGSTOP; its jobs run on): the janitor
    marks its jobs FAILED "node lost". Back (SIGCONT), its late end is
    refused, a copy still running is killed, each job's record there says
    "node lost" as the cluster does, and what really happened is an event
    on the job (`late:NODE`: exit code and end time)."""
    name = "n2"
    node = cluster.node_id(name)
    daemon = cluster.daemons[name]
    short_life = _Lifetime(SHORT_SLEEP)
    short, long = (
        _run(cluster.daemons["n1"], 1, command="sleep", args=[t], place=f"node={node}")[0]
        for t in (SHORT_SLEEP, "60")
    )
    cluster.wait_states([short, long], {"RUNNING"}, timeout=30)
    deadline = time.monotonic() + 30  # RUNNING in the store comes before the exec
    while not short_life.seen:
        assert time.monotonic() < deadline, "the short job's command never ran"
        time.sleep(0.01)
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        cluster.wait_states([short, long], {"FAILED"}, timeout=TTL_S + 10)
        # the short job ends while its node is hung (a loaded host may take
        # longer than its second to run it)
        deadline = time.monotonic() + 30
        while not short_life.gone:
            assert time.monotonic() < deadline, "the short job never ended"
            time.sleep(0.1)
    finally:
        short_life.close()
        os.kill(daemon.proc.pid, signal.SIGCONT)
    back = time.monotonic()
    note = f"late:{node}".encode()

    def notes() -> list[bytes]:
        return cluster.redis_do(
            lambda c: [c.hget(p.job_key(PREFIX, j), note) or b"" for j in (short, long)]
        )

    deadline = time.monotonic() + 30
    while not all(notes()):
        assert time.monotonic() < deadline, f"the returning node recorded nothing: {notes()}"
        time.sleep(0.2)
    took = time.monotonic() - back
    assert cluster.states([short, long]) == ["FAILED", "FAILED"]  # its ends were refused
    said_short, said_long = notes()
    assert b"exit code 0" in said_short and b"had decided FAILED" in said_short, said_short
    assert b"killed on this node's return" in said_long and b"at 20" in said_long, said_long
    assert took < TTL_S + 5, took
    assert b"stale write refused" in daemon.log_path.read_bytes()
    own = daemon.jobs()
    for job_id in (short, long):  # the node's own record: the cluster's decision
        res = wait_status(own, job_id, {"FAILED"}, timeout=10)
        assert res.endReason == p.NODE_LOST, (job_id, res.endReason)


RETRY_SLEEP = "3.019"  # an argument no other test's job sleeps for


def _count_sleeping(seconds: str) -> int:
    """How many `sleep SECONDS` commands run (not counting their tini)."""
    wanted = f"sleep\0{seconds}\0".encode()
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            count += cmdline.endswith(wanted) and not cmdline.startswith(b"tini\0")
    return count


@pytest.mark.slow  # the default suite's time; the chaos rounds hang nodes with retried jobs too
def test_a_hung_node_kills_its_retryable_job_before_the_retry_starts(cluster: Cluster) -> None:
    """SIGSTOP of a daemon whose job opted in to a retry on node loss: the
    daemon cannot fence itself, its launcher does (0.6 of the TTL after the
    last confirmed lease), so the retry on another node never runs beside
    the original; it completes, and the node back takes it as fenced."""
    up = [n for n in cluster.daemons if n not in cluster.killed]
    job = _run(cluster.daemons[up[0]], 1, command="sleep", args=[RETRY_SLEEP],
               retryOnNodeLoss=True)  # fmt: skip
    cluster.wait_states(job, {"RUNNING"}, timeout=30)
    # placed anywhere, so that its retry can run on another node
    owner = cluster.redis_do(lambda c: c.hget(p.job_key(PREFIX, job[0]), "node")).decode()
    name = next(n for n in up if cluster.node_id(n) == owner)
    daemon = cluster.daemons[name]
    deadline = time.monotonic() + 30  # RUNNING in the store comes before the exec
    while not _count_sleeping(RETRY_SLEEP):
        assert time.monotonic() < deadline, "the job's command never ran"
        time.sleep(0.01)
    most, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.wait(0.01):
            most[0] = max(most[0], _count_sleeping(RETRY_SLEEP))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        while _count_sleeping(RETRY_SLEEP):
            assert time.monotonic() - stopped < TTL_S + 5, "the hung node's copy runs on"
            time.sleep(0.02)
        # queued again by the janitor (the job took a retry), run elsewhere
        cluster.wait_states(job, {"COMPLETED"}, timeout=60)
    finally:
        stop.set()
        watcher.join()
        os.kill(daemon.proc.pid, signal.SIGCONT)
    assert most[0] == 1, "the retry ran beside the original"
    starts = sum(cluster.starts().values(), Counter())
    assert starts[job[0]] == 2
    res = wait_status(daemon.jobs(), job[0], {"STOPPED"}, timeout=20)
    assert res.endReason == "stopped by placement fence", res.endReason
    assert (
        b"killed 1 job(s) that may run again elsewhere"
        in (daemon.root / "run" / "launcher" / "launcher.log").read_bytes()
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_many_jobs_start_once_each(cluster: Cluster) -> None:
    """10,000 `true` jobs round-robin over the nodes still up: each started
    exactly once."""
    names = [n for n in cluster.daemons if n not in cluster.killed]
    before = sum(cluster.starts().values(), Counter())
    stubs = [cluster.daemons[name].jobs() for name in names]  # one channel each
    ids: list[str] = []
    for i in range(10_000):
        res = stubs[i % len(stubs)].RunJob(pb.RunJobRequest(command="true"))
        assert res.status == "QUEUED"
        ids.append(res.jobUuid)
    cluster.wait_states(ids, {"COMPLETED"}, timeout=1800)
    total = sum(cluster.starts().values(), Counter()) - before
    assert sorted(total) == sorted(ids) and max(total.values()) == 1


@pytest.mark.slow
def test_a_node_cut_from_redis_kills_its_retryable_job_which_runs_again(
    cluster: Cluster,
) -> None:
    """Last: it stalls Redis for every node. A job that opted in to a retry
    on node loss is killed by its node's fence (0.6 of the TTL without its
    lease) before the janitor queues it again, and its retry completes."""
    name = "n1"
    node = cluster.node_id(name)
    job = _run(cluster.daemons["n1"], 1, command="sleep", args=["5"], place=f"node={node}",
               retryOnNodeLoss=True)  # fmt: skip
    cluster.wait_states(job, {"RUNNING"}, timeout=30)
    assert cluster.redis is not None
    os.kill(cluster.redis.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + TTL_S + 10
        daemon = cluster.daemons[name]
        launcher_log = daemon.root / "run" / "launcher" / "launcher.log"
        # the daemon's fence or its launcher's, whichever comes first
        while (
            b"that may be retried elsewhere" not in daemon.log_path.read_bytes()
            and b"that may run again elsewhere" not in launcher_log.read_bytes()
        ):
            assert time.monotonic() < deadline, "the node did not fence itself"
            time.sleep(0.1)
        time.sleep(TTL_S)  # every lease lapses meanwhile
    finally:
        os.kill(cluster.redis.pid, signal.SIGCONT)
    cluster.wait_states(job, {"COMPLETED"}, timeout=60)
    # twice at least: a lease renewed late (its record dates from before the
    # stall) can fence the first retry too, as it should
    assert cluster.starts()[name][job[0]] >= 2
