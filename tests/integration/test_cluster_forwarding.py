"""Two real daemons of one cluster, from one CA, sharing a redis-server, each
with a node certificate (`joblet certs issue --role node`): a job run on node
A is listed, followed, measured, stopped and deleted through node B, which
forwards the calls to A with the caller's role; the role in metadata counts
only from a node peer; with A down, B answers UNAVAILABLE naming A, and
cancels A's scheduled job in the store itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.security import certs
from joblet.security.roles import ON_BEHALF_NAME_KEY, ON_BEHALF_ROLE_KEY
from joblet.setup.command import run_setup

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, wait_status
from .netns import Netns
from .test_cluster_registry import REDIS_PORT, _wait_redis, start_redis

TTL_S = 2.0
TICKS = "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done"


@dataclass
class Pair:
    a: RunningDaemon
    b: RunningDaemon
    ca: certs.CertKeyPair

    def node_id(self, daemon: RunningDaemon) -> str:
        return (daemon.root / "state" / "node-id").read_text().strip()

    def client(self, daemon: RunningDaemon, role: str, name: str) -> pb_grpc.JobServiceStub:
        """A client with a certificate of `role` from the cluster's CA."""
        cert, key = certs.issue_client_cert(self.ca.cert_pem, self.ca.key_pem, role, name)
        creds = grpc.ssl_channel_credentials(self.ca.cert_pem.encode(), key.encode(), cert.encode())
        return pb_grpc.JobServiceStub(grpc.secure_channel(f"127.0.0.1:{daemon.port}", creds))


def _node_keys(ca_root: Path, name: str) -> dict[str, str]:
    """The cluster: keys `joblet certs issue --role node` prints."""
    argv = [sys.executable, "-m", "joblet.daemon.main", "certs", "issue", "--root", str(ca_root)]
    res = subprocess.run(
        [*argv, "--role", "node", "--name", name], capture_output=True, check=True, timeout=60
    )
    keys: dict[str, str] = yaml.safe_load(res.stdout)["cluster"]
    assert set(keys) == {"nodeCert", "nodeKey"}
    return keys


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    tmp = tmp_path_factory.mktemp("forwarding")
    ca_root = tmp / "ca"  # the cluster's first node's root: its CA serves every node
    run_setup(ca_root, "127.0.0.1", 50051, [], False)
    ca_files = ["--ca-cert", str(ca_root / "config" / "ca-cert.pem")]
    ca_files += ["--ca-key", str(ca_root / "config" / "ca-key.pem")]
    ca = certs.CertKeyPair(*(Path(p).read_text() for p in ca_files[1::2]))
    world = Netns()
    redis = start_redis(world, binary, tmp)
    daemons: dict[str, RunningDaemon] = {}
    try:
        _wait_redis(world, redis)
        for n, name in enumerate(("a", "b")):
            sections = {
                "state": {
                    "backend": "redis",
                    "redis": {"port": REDIS_PORT, "keyPrefix": f"{name}:"},
                },
                "cluster": {"name": "fwd", "leaseTtl": f"{TTL_S}s", "renewEvery": "500ms",
                            **_node_keys(ca_root, f"node-{name}")},
                "metrics": {"interval": 1},
                "network": {"bridgeCidr": f"10.23{n}.0.0/24", "isolatedPool": f"10.24{n}.0.0/24"},
            }  # fmt: skip
            daemons[name] = launch_daemon(
                Path(tmp / name), sections, world=world, setup_args=ca_files
            )
        yield Pair(daemons["a"], daemons["b"], ca)
    finally:
        for daemon in daemons.values():
            daemon.stop()
        redis.terminate()
        redis.wait(timeout=10)
        world.close()


def _run_on_a(pair: Pair) -> str:
    job_id = pair.a.jobs().RunJob(pb.RunJobRequest(command="sh", args=["-c", TICKS])).jobUuid
    wait_status(pair.a.jobs(), job_id, {"RUNNING"})
    return job_id


def _stop(daemon: RunningDaemon, job_id: str) -> None:
    """Stop a job a test ran, if it still runs."""
    if daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status == "RUNNING":
        daemon.jobs().StopJob(pb.StopJobReq(uuid=job_id))


def _until(check: object, what: str, limit_s: float = 15) -> None:
    deadline = time.monotonic() + limit_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_job_of_a_is_followed_measured_stopped_and_deleted_through_b(pair: Pair) -> None:
    job_id = _run_on_a(pair)
    b = pair.b.jobs()
    # listed through B with A's node id (A's record reaches the store at once)
    _until(
        lambda: any(
            j.uuid == job_id and j.nodeId == pair.node_id(pair.a)
            for j in b.ListJobs(pb.EmptyRequest()).jobs
        ),
        "A's job is not listed through B",
    )
    follow = subprocess.Popen(
        [sys.executable, "-m", "joblet.cli.main", "--config", str(pair.b.rnx_config),
         "log", "-f", job_id[:12]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert follow.stdout is not None
        seen = [follow.stdout.readline() for _ in range(5)]
        assert all(line.startswith(b"tick ") for line in seen), seen
        # live metrics through B: the running job's samples, from A's sampler
        sample = next(iter(b.StreamJobMetrics(pb.JobMetricsRequest(uuid=job_id), timeout=15)))
        assert sample.jobId == job_id and sample.timestamp > 0
        stopped = b.StopJob(pb.StopJobReq(uuid=job_id[:12]))
        assert stopped.uuid == job_id and stopped.status == "STOPPED"
        # the follow ends with the job, on B too
        _out, err = follow.communicate(timeout=30)
        assert follow.returncode == 0, err
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert wait_status(pair.a.jobs(), job_id, {"STOPPED"}).status == "STOPPED"
    history = b.GetJobMetricsHistory(pb.JobMetricsHistoryRequest(uuid=job_id))
    assert history.samples and {s.jobId for s in history.samples} == {job_id}
    deleted = b.DeleteJob(pb.DeleteJobReq(uuid=job_id))
    assert deleted.success, deleted.message
    with pytest.raises(grpc.RpcError) as gone:
        pair.a.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND


def test_a_viewer_through_b_reads_but_cannot_stop(pair: Pair) -> None:
    job_id = _run_on_a(pair)
    try:
        viewer = pair.b.jobs("viewer")
        logs = viewer.GetJobLogs(pb.GetJobLogsReq(uuid=job_id), timeout=10)
        assert next(iter(logs)).payload.startswith(b"tick ")
        logs.cancel()
        res = pair.b.rnx("stop", job_id, node="viewer")
        assert res.returncode != 0 and b"permission denied" in res.stderr, res.stderr
        assert wait_status(pair.a.jobs(), job_id, {"RUNNING"}).status == "RUNNING"
    finally:
        _stop(pair.a, job_id)


def test_only_a_node_peer_may_name_the_caller(pair: Pair) -> None:
    job_id = _run_on_a(pair)
    as_admin = ((ON_BEHALF_ROLE_KEY, "admin"), (ON_BEHALF_NAME_KEY, "root"))
    as_viewer = ((ON_BEHALF_ROLE_KEY, "viewer"), (ON_BEHALF_NAME_KEY, "eve"))
    try:
        # a viewer naming an admin straight to A: still a viewer
        with pytest.raises(grpc.RpcError) as denied:
            pair.client(pair.a, "viewer", "eve").StopJob(
                pb.StopJobReq(uuid=job_id), metadata=as_admin
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        node = pair.client(pair.a, "node", "rogue")
        # a node acting for a viewer has the viewer's rights; for no one, none
        for metadata in (as_viewer, (), ((ON_BEHALF_ROLE_KEY, "node"), (ON_BEHALF_NAME_KEY, "x"))):
            with pytest.raises(grpc.RpcError) as denied:
                node.StopJob(pb.StopJobReq(uuid=job_id), metadata=metadata)
            assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED, metadata
        # and only forwarded methods, whoever it names
        with pytest.raises(grpc.RpcError) as denied:
            node.RunJob(pb.RunJobRequest(command="true"), metadata=as_admin)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert wait_status(pair.a.jobs(), job_id, {"RUNNING"}).status == "RUNNING"
        # an admin's name is its certificate's, whatever it sends
        stopped = pair.client(pair.a, "admin", "alice").StopJob(
            pb.StopJobReq(uuid=job_id), metadata=as_viewer
        )
        assert stopped.status == "STOPPED"
        status = pair.a.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
        assert "alice" in status.endReason, status.endReason
    finally:
        _stop(pair.a, job_id)


def test_with_a_down_b_names_it_and_cancels_its_scheduled_job(pair: Pair) -> None:
    running = _run_on_a(pair)
    later = pair.a.jobs().RunJob(pb.RunJobRequest(command="true", schedule="1h")).jobUuid
    assert wait_status(pair.a.jobs(), later, {"SCHEDULED"}).status == "SCHEDULED"
    a_id = pair.node_id(pair.a)
    b = pair.b.jobs()
    _until(
        lambda: {running, later} <= {j.uuid for j in b.ListJobs(pb.EmptyRequest()).jobs},
        "A's jobs are not listed through B",
    )
    pair.a.kill9()
    try:
        with pytest.raises(grpc.RpcError) as away:
            b.StopJob(pb.StopJobReq(uuid=running), timeout=30)
        assert away.value.code() is grpc.StatusCode.UNAVAILABLE
        assert a_id in str(away.value.details())

        def canceled() -> bool:
            try:
                return b.CancelJob(pb.CancelJobReq(uuid=later)).status == "CANCELED"
            except grpc.RpcError as exc:  # A's lease has not lapsed yet
                assert exc.code() is grpc.StatusCode.UNAVAILABLE, exc
                assert a_id in str(exc.details())
                return False

        _until(canceled, "A's scheduled job was not canceled through B", TTL_S + 10)
        status = b.GetJobStatus(pb.GetJobStatusReq(uuid=later))
        assert status.status == "CANCELED"
    finally:
        pair.a.restart()
    # A, back, keeps the cluster's decision
    assert pair.a.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=later)).status == "CANCELED"
    _stop(pair.a, running)
