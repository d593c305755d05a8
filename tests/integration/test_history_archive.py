"""Real daemons with `persist.backend: s3` against moto_server, reached from
the daemon's network namespace through a fault-injecting proxy that listens
there: uploads, identical answers once the local copy is gone, another node
serving a job by id, retention, the store away under a log flood, and persist
killed mid-upload."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import RunningDaemon, launch_daemon, wait_status
from .netns import Netns, in_netns

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
PROXY_PORT = 9000  # inside each daemon's own namespace, where every port is free
PREFIX = "it"


def _wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout}s: {what}")
        time.sleep(0.1)


class Bucket:
    def __init__(self, endpoint: str) -> None:
        self.name = f"it-{uuid.uuid4().hex[:12]}"
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.client.create_bucket(Bucket=self.name)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def has(self, key: str) -> bool:
        return key in self.keys(key)

    def open_uploads(self) -> list[Any]:
        return list(self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", []))


@pytest.fixture
def bucket(moto_endpoint: str, aws_credentials: None) -> Bucket:
    return Bucket(moto_endpoint)


@pytest.fixture
def archived_daemon(
    tmp_path: Path, moto_endpoint: str, bucket: Bucket, fault_proxy: Callable[..., Any]
) -> Iterator[Callable[..., tuple[RunningDaemon, Any]]]:
    """Daemons on `bucket`, each reaching moto through its own proxy."""
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, cgroups, mounts)")
    started: list[RunningDaemon] = []
    moto_port = int(moto_endpoint.rsplit(":", 1)[1])

    def start(persist: dict[str, Any] | None = None, **s3: Any) -> tuple[RunningDaemon, Any]:
        world = Netns()
        try:
            listener = in_netns(
                world.netns, lambda: socket.create_server(("127.0.0.1", PROXY_PORT))
            )
        except BaseException:
            world.close()
            raise
        proxy = fault_proxy(moto_port, listener)
        settings = {
            "bucket": bucket.name,
            "prefix": PREFIX,
            "endpointUrl": f"http://127.0.0.1:{PROXY_PORT}",
            "accessKeyId": "testing",
            "secretAccessKey": "testing",
            "keepLocal": "0s",
            "uploadInterval": "200ms",
            "maxBackoff": "1s",
            **s3,
        }
        sections = {
            "persist": {"backend": "s3", "s3": settings, **(persist or {})},
            "metrics": {"interval": 1, "historyCacheBytes": 0},
        }
        daemon = launch_daemon(tmp_path / f"d{len(started)}", sections, world=world)
        started.append(daemon)
        return daemon, proxy

    yield start
    for daemon in started:
        daemon.stop()


def node_id(daemon: RunningDaemon) -> str:
    return (daemon.root / "state" / "node-id").read_text().strip()


def manifest_key(daemon: RunningDaemon, job_id: str) -> str:
    return f"{PREFIX}/{node_id(daemon)}/{job_id}/manifest.json"


def local_copy(daemon: RunningDaemon, job_id: str) -> bool:
    return any((daemon.root / kind / job_id).exists() for kind in ("logs", "metrics"))


def run(daemon: RunningDaemon, script: str) -> str:
    reply = daemon.jobs().RunJob(pb.RunJobRequest(command="sh", args=["-c", script]))
    return str(reply.jobUuid)


def log_of(daemon: RunningDaemon, job_id: str) -> bytes:
    res = daemon.rnx("job", "log", job_id, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout


def metrics_of(daemon: RunningDaemon, job_id: str) -> tuple[bytes, bytes]:
    stub = daemon.jobs()
    history = stub.GetJobMetricsHistory(pb.JobMetricsHistoryRequest(uuid=job_id))
    summary = stub.GetJobMetricsSummary(pb.JobMetricsSummaryRequest(uuid=job_id))
    return history.SerializeToString(), summary.SerializeToString()


def seq_sha256(last: int) -> str:
    digest = hashlib.sha256()
    for start in range(1, last + 1, 100_000):
        stop = min(start + 100_000, last + 1)
        digest.update(b"".join(b"%d\n" % i for i in range(start, stop)))
    return digest.hexdigest()


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(400_000, id="3MB"),
        pytest.param(12_500_000, id="100MB", marks=pytest.mark.slow),
    ],
)
def test_finished_job_is_archived_and_served_the_same_here_and_by_another_node(
    lines: int, archived_daemon: Callable[..., tuple[RunningDaemon, Any]], bucket: Bucket
) -> None:
    expected = seq_sha256(lines)
    daemon, _ = archived_daemon(keepLocal="4s")
    job_id = run(daemon, f"seq 1 {lines}; sleep 2")
    wait_status(daemon.jobs(), job_id, FINAL, timeout=120)
    _wait_for(lambda: bucket.has(manifest_key(daemon, job_id)), 120, "the manifest")
    # Still local (keepLocal): the answers before...
    assert local_copy(daemon, job_id)
    before_log = hashlib.sha256(log_of(daemon, job_id)).hexdigest()
    before_metrics = metrics_of(daemon, job_id)
    assert before_log == expected
    assert pb.JobMetricsHistoryResponse.FromString(before_metrics[0]).samples
    keys = bucket.keys(f"{PREFIX}/{node_id(daemon)}/{job_id}/")
    assert any(re.fullmatch(rf".*/{job_id}/logs/seg-\d{{8}}\.zst", k) for k in keys)
    assert any(re.fullmatch(rf".*/{job_id}/metrics/seg-\d{{8}}\.zst", k) for k in keys)
    # ...and once the local copy is gone, from the bucket: the same.
    _wait_for(lambda: not local_copy(daemon, job_id), 60, "the local copy dropped")
    assert hashlib.sha256(log_of(daemon, job_id)).hexdigest() == expected
    assert metrics_of(daemon, job_id) == before_metrics
    # A node that never ran the job serves its log by id.
    other, _ = archived_daemon()
    assert node_id(other) != node_id(daemon)
    assert hashlib.sha256(log_of(other, job_id)).hexdigest() == expected
    missing = other.rnx("job", "log", str(uuid.uuid4()))
    assert missing.returncode != 0 and b"not found" in missing.stderr.lower()


def test_retention_deletes_archived_jobs_whole(
    archived_daemon: Callable[..., tuple[RunningDaemon, Any]], bucket: Bucket
) -> None:
    daemon, _ = archived_daemon({"retention": {"sweepInterval": "1s"}}, maxAge="4s")
    job_id = run(daemon, "seq 1 1000")
    wait_status(daemon.jobs(), job_id, FINAL)
    _wait_for(lambda: bucket.has(manifest_key(daemon, job_id)), 60, "the manifest")
    assert log_of(daemon, job_id) == b"".join(b"%d\n" % i for i in range(1, 1001))
    prefix = f"{PREFIX}/{node_id(daemon)}/{job_id}/"
    _wait_for(lambda: not bucket.keys(prefix), 60, "the job deleted from the bucket")
    assert not local_copy(daemon, job_id)
    assert log_of(daemon, job_id) == b""


def _numbered(output: bytes) -> list[int]:
    return [int(line.split()[1]) for line in output.splitlines()]


@pytest.mark.slow  # over 15 s: make test-all runs it
def test_store_away_under_a_log_flood_loses_no_line(
    archived_daemon: Callable[..., tuple[RunningDaemon, Any]], bucket: Bucket
) -> None:
    """The store is away for 30 s while a job floods its log for 12 s;
    segments close meanwhile and their uploads fail."""
    daemon, proxy = archived_daemon({"segmentSize": "256KB", "segmentTime": "1s"})
    proxy.mode = "drop"
    down_at = time.monotonic()
    script = 'i=0; end=$(( $(date +%s) + 12 )); while [ "$(date +%s)" -lt $end ]; do n=0; '
    script += 'while [ $n -lt 2000 ]; do i=$((i+1)); n=$((n+1)); echo "line $i"; done; done'
    job_id = run(daemon, script)
    wait_status(daemon.jobs(), job_id, FINAL, timeout=60)
    _wait_for(lambda: time.monotonic() - down_at > 30, 40)
    assert proxy.seen["drop"] > 0
    assert not bucket.has(manifest_key(daemon, job_id)) and local_copy(daemon, job_id)
    served_while_down = _numbered(log_of(daemon, job_id))
    proxy.mode = "pass"
    _wait_for(lambda: bucket.has(manifest_key(daemon, job_id)), 60, "the manifest")
    _wait_for(lambda: not local_copy(daemon, job_id), 30, "the local copy dropped")
    numbers = _numbered(log_of(daemon, job_id))
    assert len(numbers) > 50_000
    assert numbers == list(range(1, len(numbers) + 1)) == served_while_down


def test_persist_killed_mid_multipart_upload_serves_whole_objects_once(
    archived_daemon: Callable[..., tuple[RunningDaemon, Any]], bucket: Bucket
) -> None:
    daemon, proxy = archived_daemon({"segmentSize": "64MB"})
    proxy.mode, proxy.delay_s = "throttle", 0.05  # about 1 MB/s per connection
    # About 12 MB of base64: a segment over 8 MiB once compressed.
    job_id = run(daemon, "head -c 9000000 /dev/urandom | base64 -w 76")
    wait_status(daemon.jobs(), job_id, FINAL, timeout=60)
    _wait_for(lambda: any(b"partNumber=" in line for line in proxy.requests), 60, "a part")
    os.kill(int((daemon.root / "run" / "persist.pid").read_text()), signal.SIGKILL)
    assert not bucket.has(manifest_key(daemon, job_id))
    proxy.mode = "pass"
    _wait_for(lambda: bucket.has(manifest_key(daemon, job_id)), 120, "the manifest")
    _wait_for(lambda: not local_copy(daemon, job_id), 30, "the local copy dropped")
    _wait_for(lambda: not bucket.open_uploads(), 30, "the unfinished upload aborted")
    keys = bucket.keys(f"{PREFIX}/{node_id(daemon)}/{job_id}/")
    logs = [k for k in keys if "/logs/" in k]
    assert len(logs) == len(set(logs)) == 1, keys
    output = log_of(daemon, job_id)
    lines = output.split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == -(-12_000_000 // 76)
    assert all(len(line) == 76 for line in lines[:-2]) and len(output) == 12_157_895


def persist_stats(daemon: RunningDaemon) -> Any:
    import grpc

    from joblet.api import persist_pb2, persist_pb2_grpc

    with grpc.insecure_channel(f"unix:{daemon.root / 'run' / 'persist-grpc.sock'}") as channel:
        return persist_pb2_grpc.PersistQueryStub(channel).Stats(persist_pb2.StatsRequest())


def test_disk_pressure_with_the_store_away_drops_archived_copies_first_never_pending_ones(
    archived_daemon: Callable[..., tuple[RunningDaemon, Any]], bucket: Bucket
) -> None:
    retention = {"maxTotalSize": "1MB", "sweepInterval": "1s"}
    daemon, proxy = archived_daemon({"retention": retention}, keepLocal="1h")
    kept = run(daemon, "seq 1 100000")  # archived, kept locally for keepLocal
    wait_status(daemon.jobs(), kept, FINAL)
    _wait_for(lambda: bucket.has(manifest_key(daemon, kept)), 60, "the first manifest")
    assert local_copy(daemon, kept)
    proxy.mode = "drop"
    pending = run(daemon, "head -c 3000000 /dev/urandom | od -A n -t x1")  # over 1MB stored
    wait_status(daemon.jobs(), pending, FINAL)
    # Over the limit: the archived copy goes, the job the store has not taken stays.
    _wait_for(lambda: not local_copy(daemon, kept), 30, "the archived copy dropped")
    _wait_for(lambda: persist_stats(daemon).retention_blocked > 0, 30, "a blocked sweep counted")
    assert local_copy(daemon, pending)
    persist_log = (daemon.root / "run" / "persist.log").read_text()
    assert "over retention.maxTotalSize" in persist_log
    expected = log_of(daemon, pending)
    assert len(expected) > 3_000_000
    proxy.mode = "pass"
    _wait_for(lambda: bucket.has(manifest_key(daemon, pending)), 60, "the second manifest")
    assert log_of(daemon, kept) == b"".join(b"%d\n" % i for i in range(1, 100001))
    _wait_for(lambda: not local_copy(daemon, pending), 30, "the second copy dropped")
    assert log_of(daemon, pending) == expected


def test_cloudwatch_logs_gets_a_live_copy_of_the_job_log(
    archived_daemon: Callable[..., tuple[RunningDaemon, Any]], moto_endpoint: str
) -> None:
    group = f"/joblet/it-{uuid.uuid4().hex[:8]}"
    cloudwatch = {
        "logGroup": group,
        "endpointUrl": f"http://127.0.0.1:{PROXY_PORT}",
        "accessKeyId": "testing",
        "secretAccessKey": "testing",
        "flushInterval": "200ms",
    }
    daemon, _ = archived_daemon({"cloudwatch": cloudwatch})
    job_id = run(daemon, "seq 1 20000")
    wait_status(daemon.jobs(), job_id, FINAL)
    client = boto3.client("logs", endpoint_url=moto_endpoint, region_name="us-east-1")

    def copied() -> str:
        text, token = "", None
        while True:
            args: dict[str, Any] = {"logGroupName": group, "logStreamName": job_id,
                                    "startFromHead": True}  # fmt: skip
            if token:
                args["nextToken"] = token
            try:
                page = client.get_log_events(**args)
            except client.exceptions.ResourceNotFoundException:
                return ""
            text += "".join(event["message"] for event in page["events"])
            if not page["events"] or page["nextForwardToken"] == token:
                return text
            token = page["nextForwardToken"]

    expected = "".join(f"{i}\n" for i in range(1, 20001))
    _wait_for(lambda: copied() == expected, 60, "the log in CloudWatch Logs")


def test_history_exported_from_one_node_is_served_by_another_after_import(
    make_daemon: Callable[..., RunningDaemon], tmp_path: Path
) -> None:
    import subprocess
    import sys

    first, second = make_daemon(), make_daemon()
    job_id = run(first, "seq 1 50000")
    wait_status(first.jobs(), job_id, FINAL)
    expected = b"".join(b"%d\n" % i for i in range(1, 50001))
    _wait_for(lambda: log_of(first, job_id) == expected, 30, "the log in persist")
    index = first.root / "logs" / job_id / "index.json"
    _wait_for(lambda: index.exists() and b'"sealed":true' in index.read_bytes(), 30, "sealed")

    def history(daemon: RunningDaemon, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "joblet.daemon.main", "history", *args]
        return subprocess.run(
            [*argv, "--config", str(daemon.config_path)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    exported = history(first, "export", job_id, str(tmp_path / "moved"))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == str(tmp_path / "moved" / job_id)
    assert second.rnx("job", "log", job_id).returncode != 0  # unknown there
    imported = history(second, "import", str(tmp_path / "moved" / job_id))
    assert (imported.returncode, imported.stdout.strip()) == (0, job_id), imported.stderr
    assert log_of(second, job_id) == expected
    again = history(second, "import", str(tmp_path / "moved" / job_id))
    assert again.returncode == 1 and "already has" in again.stderr


@pytest.mark.slow  # over 15 s: make test-all runs it
def test_disk_near_full_with_the_store_away_drops_archived_copies_first(
    archived_daemon: Callable[..., tuple[RunningDaemon, Any]], bucket: Bucket
) -> None:
    """retention.minFree on a 4 MB filesystem holding the logs."""
    import subprocess

    retention = {"minFree": "3MB", "sweepInterval": "1s"}
    daemon, proxy = archived_daemon({"retention": retention}, keepLocal="1h")
    logs = daemon.root / "logs"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(logs)], check=True)
    try:
        kept = run(daemon, "seq 1 100000")
        wait_status(daemon.jobs(), kept, FINAL)
        _wait_for(lambda: bucket.has(manifest_key(daemon, kept)), 60, "the first manifest")
        assert (logs / kept).is_dir()
        proxy.mode = "drop"
        pending = run(daemon, "head -c 1200000 /dev/urandom | base64")
        wait_status(daemon.jobs(), pending, FINAL)
        _wait_for(lambda: not (logs / kept).exists(), 30, "the archived copy dropped")
        _wait_for(lambda: persist_stats(daemon).retention_blocked > 0, 30, "a blocked sweep")
        assert (logs / pending).is_dir()
        expected = log_of(daemon, pending)
        assert len(expected) > 1_600_000
        proxy.mode = "pass"
        _wait_for(lambda: bucket.has(manifest_key(daemon, pending)), 60, "the second manifest")
        _wait_for(lambda: not (logs / pending).exists(), 30, "the second copy dropped")
        assert log_of(daemon, pending) == expected
        assert log_of(daemon, kept) == b"".join(b"%d\n" % i for i in range(1, 100001))
    finally:
        daemon.stop()
        subprocess.run(["umount", "-l", str(logs)], check=False)


def test_another_node_serves_metrics_by_id_and_names_the_store_when_it_fails(
    archived_daemon: Callable[..., tuple[RunningDaemon, Any]], bucket: Bucket
) -> None:
    import grpc

    daemon, _ = archived_daemon()
    job_id = run(daemon, "seq 1 1000; sleep 3")
    wait_status(daemon.jobs(), job_id, FINAL)
    _wait_for(lambda: bucket.has(manifest_key(daemon, job_id)), 60, "the manifest")
    _wait_for(lambda: not local_copy(daemon, job_id), 30, "the local copy dropped")
    served = metrics_of(daemon, job_id)
    assert len(pb.JobMetricsHistoryResponse.FromString(served[0]).samples) >= 2
    other, proxy = archived_daemon()
    assert metrics_of(other, job_id) == served
    streamed = list(other.jobs().StreamJobMetrics(pb.JobMetricsRequest(uuid=job_id)))
    # The same samples (two taken in the same second may come in either order).
    history = pb.JobMetricsHistoryResponse.FromString(served[0]).samples
    assert sorted(s.SerializeToString() for s in streamed) == sorted(
        s.SerializeToString() for s in history
    )
    summary = other.rnx("job", "metrics", job_id, "--summary")
    assert summary.returncode == 0 and b"cpu" in summary.stdout.lower(), summary.stderr
    with pytest.raises(grpc.RpcError) as status:
        other.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
    assert status.value.code() == grpc.StatusCode.NOT_FOUND
    assert "not on this node, but its history is" in (status.value.details() or "")
    missing = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as status:
        other.jobs().GetJobMetricsSummary(pb.JobMetricsSummaryRequest(uuid=missing))
    assert status.value.code() == grpc.StatusCode.NOT_FOUND
    # The store fails: the daemon answers, naming it; rnx shows that answer.
    proxy.mode = "drop"
    with pytest.raises(grpc.RpcError) as status:
        other.jobs().GetJobMetricsSummary(pb.JobMetricsSummaryRequest(uuid=job_id))
    assert status.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (status.value.details() or "").startswith("history store unreachable: ")
    res = other.rnx("job", "log", job_id)
    assert res.returncode != 0
    assert b"history store unreachable" in res.stderr and b"daemon running" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
