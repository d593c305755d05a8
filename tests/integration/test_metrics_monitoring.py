"""MonitoringService and the rnx metrics commands through a real daemon."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, RunningDaemon, wait_status
from .test_metrics_support import (
    FINAL,
    final_history,
    run_job,
    start_metrics_daemon,
    stop_metrics_daemon,
)

pytestmark = [pytest.mark.integration, pytest.mark.privileged]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_metrics_daemon(tmp_path_factory.mktemp("monitoring"), {"interval": 1})
    yield running
    stop_metrics_daemon(running)


def monitoring(daemon: RunningDaemon, node: str = "default") -> pb_grpc.MonitoringServiceStub:
    return pb_grpc.MonitoringServiceStub(daemon.channel(node))  # type: ignore[no-untyped-call]


def test_system_status_names_the_stable_node(daemon: RunningDaemon) -> None:
    res = monitoring(daemon, "viewer").GetSystemStatus(pb.EmptyRequest(), timeout=30)
    node_id = (daemon.root / "state" / "node-id").read_text().strip()
    assert res.host.nodeId == node_id
    assert res.cpu.cores == os.cpu_count()
    assert res.memory.totalBytes > 0 and res.disks and res.processes.totalProcesses > 0


def test_stream_system_metrics_keeps_to_the_filter(daemon: RunningDaemon) -> None:
    request = pb.StreamMetricsReq(intervalSeconds=1, metricTypes=["cpu", "memory"])
    stream = monitoring(daemon).StreamSystemMetrics(request, timeout=30)
    readings = [next(stream), next(stream)]
    stream.cancel()
    for m in readings:
        assert m.cpu.cores > 0 and m.memory.totalBytes > 0
        assert not m.disks and not m.networks and m.processes.totalProcesses == 0
    assert readings[0].timestamp != readings[1].timestamp


def test_rnx_job_metrics_and_summary_of_a_finished_job(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = run_job(stub, "sh", "-c", "sleep 1.5")
    wait_status(stub, job_id, FINAL)
    samples = final_history(stub, job_id)
    out = daemon.rnx("job", "metrics", job_id)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert lines[0].split()[:2] == ["TIME", "CPU%"] and len(lines) == 1 + len(samples)
    out = daemon.rnx("--json", "job", "metrics", job_id)
    assert [json.loads(x)["timestamp"] for x in out.stdout.decode().splitlines()] == [
        s.timestamp
        for s in samples  # int64 as a JSON number
    ]
    out = daemon.rnx("job", "metrics", "--summary", job_id, node="viewer")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split()[:6] == ["MIN", "AVG", "P50", "P95", "P99", "MAX"]


def test_rnx_monitor_status_and_top_piped(daemon: RunningDaemon) -> None:
    out = daemon.rnx("monitor", "status")
    assert out.returncode == 0, out.stderr
    assert "Node:" in out.stdout.decode() and "CPU:" in out.stdout.decode()
    out = daemon.rnx("monitor", "top")  # piped: one reading, then exit
    assert out.returncode == 0, out.stderr
    assert "Top by CPU:" in out.stdout.decode() and "\x1b[" not in out.stdout.decode()
