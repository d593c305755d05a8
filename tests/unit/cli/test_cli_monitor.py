"""`rnx monitor ...` and `rnx job metrics` against in-process fake servicers.

main.py does not register these commands yet (the composition is another
module's), so the tests build the same parser shape here."""

from __future__ import annotations

import argparse
import io
import json
import os
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from conftest import insecure_channel, write_config

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.cli import metrics, monitor
from joblet.cli.context import CommandContext
from joblet.cli.parser import RnxArgumentParser, add_global_options
from joblet.client.errors import CliError

S = 1_000_000_000


def sample(t: int, cpu: float) -> pb.JobMetricsSample:
    return pb.JobMetricsSample(
        jobId="job-1", timestamp=1_700_000_000 * S + t * S, sampleIntervalSeconds=1,
        cpu=pb.JobCPUMetrics(usagePercent=cpu, userUsec=1_500_000),
        memory=pb.JobMemoryMetrics(current=200 << 20, max=512 << 20, usagePercent=39.1),
        io=pb.JobIOMetrics(writeBPS=1 << 20), process=pb.JobProcessMetrics(current=2),
    )  # fmt: skip


class FakeMetrics(pb_grpc.JobServiceServicer, pb_grpc.MonitoringServiceServicer):
    def __init__(self) -> None:
        self.stream_requests: list[pb.StreamMetricsReq] = []

    def StreamJobMetrics(
        self, request: pb.JobMetricsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.JobMetricsSample]:
        if request.uuid != "job-1":
            context.abort(grpc.StatusCode.NOT_FOUND, f"job {request.uuid} not found")
        yield from (sample(1, 49.5), sample(2, 50.5))

    def GetJobMetricsSummary(
        self, request: pb.JobMetricsSummaryRequest, context: grpc.ServicerContext
    ) -> pb.JobMetricsSummaryResponse:
        agg = pb.JobMetricsAggregate(min=1, max=99, avg=50, p50=50, p95=95, p99=99)
        return pb.JobMetricsSummaryResponse(cpu=agg, memory=pb.JobMetricsAggregate(max=200 << 20))

    def GetSystemStatus(
        self, request: pb.EmptyRequest, context: grpc.ServicerContext
    ) -> pb.SystemStatusRes:
        return pb.SystemStatusRes(
            available=True,
            host=pb.HostInfo(hostname="box", nodeId="node-7", kernelVersion="6.1"),
            cpu=pb.CPUMetrics(cores=2, usagePercent=12.5, loadAverage=[0.5, 0.25, 0.1]),
            memory=pb.MemoryMetrics(totalBytes=8 << 30, usedBytes=2 << 30, usagePercent=25),
            disks=[pb.DiskMetrics(device="/dev/vda", mountPoint="/", usagePercent=21.9)],
            processes=pb.ProcessMetrics(
                totalProcesses=90,
                topByCPU=[pb.ProcessInfo(pid=42, name="burn", cpuPercent=99.0, user="root")],
                topByMemory=[pb.ProcessInfo(pid=43, name="hog", memoryBytes=1 << 30)],
            ),
            server_version=pb.ServerVersionInfo(version="0.1.0", component="joblet"),
        )

    def StreamSystemMetrics(
        self, request: pb.StreamMetricsReq, context: grpc.ServicerContext
    ) -> Iterator[pb.SystemMetricsRes]:
        self.stream_requests.append(request)
        for pct in (10.0, 20.0):
            yield pb.SystemMetricsRes(
                timestamp="2024-05-01T10:00:00Z", cpu=pb.CPUMetrics(usagePercent=pct),
                memory=pb.MemoryMetrics(usagePercent=30.0),
            )  # fmt: skip


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[FakeMetrics, Path]]:
    servicer = FakeMetrics()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_JobServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    pb_grpc.add_MonitoringServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, write_config(tmp_path / "rnx.yml", f"127.0.0.1:{port}")
    server.stop(grace=None)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def rnx(config: Path, *argv: str, out: io.StringIO | None = None) -> tuple[int, str]:
    parser = RnxArgumentParser(prog="rnx")
    add_global_options(parser, None)
    parser.set_defaults(json=False)
    common = RnxArgumentParser(add_help=False)
    add_global_options(common, argparse.SUPPRESS)
    commands = parser.add_subparsers(required=True)
    job = commands.add_parser("job", parents=[common])
    metrics.add_commands(job.add_subparsers(required=True), [common])
    monitor.add_commands(commands, [common])
    args = parser.parse_args(["--config", str(config), *argv])
    out = out or io.StringIO()
    ctx = CommandContext(
        args, out, io.StringIO(), os.environ, Path.cwd(), Path.home(), insecure_channel
    )
    code = args.handler(ctx)
    return code, out.getvalue()


def test_job_metrics_piped_prints_one_line_per_sample(fake: tuple[FakeMetrics, Path]) -> None:
    code, out = rnx(fake[1], "job", "metrics", "job-1")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and lines[0].startswith("TIME")
    assert "49.5" in lines[1] and "50.5" in lines[2] and "200.0 MiB" in lines[1]
    assert "\x1b" not in out


def test_job_metrics_in_a_terminal_redraws_in_place(fake: tuple[FakeMetrics, Path]) -> None:
    code, out = rnx(fake[1], "job", "metrics", "job-1", out=Tty())
    assert code == 0 and out.count(metrics.CLEAR) == 2
    assert "200.0 MiB / 512.0 MiB" in out and "50.5% of a core" in out


def test_job_metrics_json_and_summary(fake: tuple[FakeMetrics, Path]) -> None:
    _, out = rnx(fake[1], "job", "metrics", "job-1", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["cpu"]["usage_percent"] for r in rows] == [49.5, 50.5]
    _, out = rnx(fake[1], "job", "metrics", "job-1", "--summary")
    assert out.splitlines()[0].split() == ["MIN", "AVG", "P50", "P95", "P99", "MAX"]
    assert "99.0%" in out and "200.0 MiB" in out


def test_job_metrics_unknown_job_is_one_line_error(fake: tuple[FakeMetrics, Path]) -> None:
    with pytest.raises(CliError, match="job nope not found"):
        rnx(fake[1], "job", "metrics", "nope")


def test_monitor_status_and_top(fake: tuple[FakeMetrics, Path]) -> None:
    _, out = rnx(fake[1], "monitor", "status")
    assert "box" in out and "node-7" in out and "12.5% of 2 cores" in out and "/dev/vda" in out
    _, out = rnx(fake[1], "monitor", "top")
    assert "burn" in out and "hog" in out and "1.0 GiB" in out
    _, out = rnx(fake[1], "monitor", "status", "--json")
    assert json.loads(out)["host"]["node_id"] == "node-7"


def test_monitor_watch_filter_and_interval(fake: tuple[FakeMetrics, Path]) -> None:
    servicer, config = fake
    _, out = rnx(config, "monitor", "watch", "--interval", "2", "--filter", "cpu,memory")
    assert out.splitlines() == [
        "2024-05-01T10:00:00Z cpu=10.0% mem=30.0%",
        "2024-05-01T10:00:00Z cpu=20.0% mem=30.0%",
    ]
    assert servicer.stream_requests[-1].intervalSeconds == 2
    assert list(servicer.stream_requests[-1].metricTypes) == ["cpu", "memory"]
    with pytest.raises(CliError, match="unknown metric types gpu"):
        rnx(config, "monitor", "watch", "--filter", "gpu")
