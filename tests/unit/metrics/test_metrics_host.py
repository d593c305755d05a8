# ruff: noqa: E501  (verbatim kernel samples / JSON, one line each)
"""Host status through psutil (sanity on this host), the stream parameters,
config parsing, and cloud detection from DMI strings (no network: the
metadata fetch is a fake)."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.daemon.monitoring_service import MonitoringService, stream_parameters
from joblet.errors import ConfigError, InvalidArgument
from joblet.metrics.cloud import detect_cloud, detect_from_dmi
from joblet.metrics.config import MetricsConfig, PrometheusConfig, parse_metrics_config
from joblet.metrics.host import HostCollector, disk_from_statvfs


def test_host_status_fields_are_sane() -> None:
    res = HostCollector("node-1").status()
    assert res.available and res.host.nodeId == "node-1" and res.host.hostname
    assert res.host.cpuCount == os.cpu_count() == res.cpu.cores == len(res.cpu.perCoreUsage)
    assert len(res.cpu.loadAverage) == 3
    assert 0 < res.memory.usedBytes < res.memory.totalBytes == res.host.totalMemory
    root = [d for d in res.disks if d.mountPoint == "/"]
    assert root and root[0].inodesTotal > root[0].inodesUsed > 0
    assert (
        res.processes.totalProcesses > 1
        and res.processes.totalThreads >= res.processes.totalProcesses
    )
    top = res.processes.topByMemory
    assert len(top) == min(10, res.processes.totalProcesses)
    assert [p.memoryBytes for p in top] == sorted((p.memoryBytes for p in top), reverse=True)
    assert any(n.interface == "lo" for n in res.networks)
    assert res.server_version.component == "joblet" and "python" in res.server_version.platform
    assert res.server_version.go_version == ""


def test_statvfs_arithmetic() -> None:
    st = os.statvfs_result((4096, 4096, 100, 40, 30, 1000, 250, 250, 0, 255, 0))
    d = disk_from_statvfs("/dev/x", "/", "ext4", st)
    assert (d.totalBytes, d.usedBytes, d.freeBytes) == (409600, 245760, 122880)
    assert d.usagePercent == pytest.approx(100 * 60 / 90)
    assert (d.inodesUsed, d.inodesUsagePercent) == (750, 75.0)


async def test_stream_honours_the_type_filter() -> None:
    service = MonitoringService(HostCollector("n"))
    stream = service.StreamSystemMetrics(
        pb.StreamMetricsReq(intervalSeconds=1, metricTypes=["memory"]), None
    )
    first = await anext(stream)
    await stream.aclose()
    assert first.memory.totalBytes > 0 and first.cpu.cores == 0 and not first.disks


def test_stream_parameters() -> None:
    assert stream_parameters(pb.StreamMetricsReq())[0] == 5
    assert stream_parameters(pb.StreamMetricsReq(metricTypes=["CPU"]))[1] == {"cpu"}
    with pytest.raises(InvalidArgument):
        stream_parameters(pb.StreamMetricsReq(metricTypes=["gpu"]))
    with pytest.raises(InvalidArgument):
        stream_parameters(pb.StreamMetricsReq(intervalSeconds=-1))


def test_metrics_config() -> None:
    assert parse_metrics_config(None) == MetricsConfig()
    cfg = parse_metrics_config(
        {"interval": 1, "prometheus": {"enabled": True, "address": "0.0.0.0:9200"}}
    )
    assert cfg.interval_s == 1.0 and cfg.prometheus == PrometheusConfig(True, "0.0.0.0", 9200)
    for bad in (
        {"interval": 0.5},
        {"interval": "5"},
        {"nope": 1},
        {"prometheus": {"address": "x"}},
    ):
        with pytest.raises(ConfigError):
            parse_metrics_config(bad)


def test_cloud_from_dmi() -> None:
    aws = detect_from_dmi({"sys_vendor": "Amazon EC2", "product_name": "m5.large"})
    assert (aws.provider, aws.hypervisorType) == ("aws", "nitro")
    gcp = detect_from_dmi({"sys_vendor": "Google", "product_name": "Google Compute Engine"})
    assert gcp.provider == "gcp"
    azure = detect_from_dmi(
        {
            "sys_vendor": "Microsoft Corporation",
            "chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77",
        }
    )
    assert (azure.provider, azure.hypervisorType) == ("azure", "hyper-v")
    kvm = detect_from_dmi({"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"})
    assert (kvm.provider, kvm.hypervisorType) == ("", "qemu")
    assert detect_from_dmi({}, "xen\n").hypervisorType == "xen"


def test_metadata_only_when_enabled(tmp_path: Path) -> None:
    (tmp_path / "sys_vendor").write_text("Amazon EC2\n")
    asked: list[str] = []

    def fetch(req: urllib.request.Request) -> str:
        asked.append(req.full_url)
        if req.full_url.endswith("/api/token"):
            return "tok"
        return '{"region": "eu-west-1", "availabilityZone": "eu-west-1a", "instanceId": "i-1", "instanceType": "t3.micro"}'

    off = detect_cloud(
        ask_metadata=False, dmi_dir=tmp_path, hypervisor_file=tmp_path / "x", fetch=fetch
    )
    assert off.provider == "aws" and off.region == "" and asked == []
    on = detect_cloud(
        ask_metadata=True, dmi_dir=tmp_path, hypervisor_file=tmp_path / "x", fetch=fetch
    )
    assert (on.region, on.zone, on.instanceID, on.instanceType) == (
        "eu-west-1",
        "eu-west-1a",
        "i-1",
        "t3.micro",
    )
    assert len(asked) == 2
