"""The charts' points and the summary and host tables, from API messages."""

from __future__ import annotations

from joblet.api import joblet_pb2 as pb
from joblet.ui import charts, views


def test_a_job_point_has_every_series_and_gpus_only_when_the_job_has_them() -> None:
    sample = pb.JobMetricsSample(
        timestamp=100, cpu=pb.JobCPUMetrics(usagePercent=42.5),
        memory=pb.JobMemoryMetrics(current=3 << 20), limits=pb.JobResourceLimits(memory=8 << 20),
        io=pb.JobIOMetrics(readBPS=10, writeBPS=20), network=pb.JobNetworkMetrics(rxBPS=1, txBPS=2),
    )  # fmt: skip
    assert charts.job_point(sample) == [100.0, 42.5, 3 << 20, 8 << 20, 10, 20, 1, 2, None, None]
    sample.gpu.add(utilization=30, memoryUsed=100)
    sample.gpu.add(utilization=50, memoryUsed=200)
    sample.limits.memory = 0  # no limit: no limit line
    point = charts.job_point(sample)
    assert point[3] is None and point[8:] == [40.0, 300.0]
    assert len(point) == len(charts.JOB_POINT)


def test_the_summary_has_each_aggregate_in_its_unit() -> None:
    agg = pb.JobMetricsAggregate
    summary = pb.JobMetricsSummaryResponse(
        cpu=agg(min=1, max=99.5, avg=50, p50=48, p95=90, p99=98.25),
        memory=agg(min=1 << 20, max=3 << 30, avg=2 << 20, p50=2 << 20, p95=5 << 20, p99=6 << 20),
        io=agg(max=2048), network=agg(max=512),
    )  # fmt: skip
    rows = {row.metric: row.values for row in charts.summary_rows(summary)}
    assert rows["CPU"] == ("1.0 %", "50.0 %", "48.0 %", "90.0 %", "98.2 %", "99.5 %")
    assert rows["memory"][0] == "1.0 MB" and rows["memory"][-1] == "3.0 GB"
    assert rows["IO (read + write)"][-1] == "2.0 KB/s"
    assert rows["network (rx + tx)"][-1] == "512 B/s"


def test_a_host_sample_gives_points_per_core_and_its_tables() -> None:
    sample = pb.SystemMetricsRes(
        timestamp="2026-01-01T10:00:02Z",
        cpu=pb.CPUMetrics(usagePercent=30, perCoreUsage=[10, 50], loadAverage=[0.5, 1, 2]),
        memory=pb.MemoryMetrics(totalBytes=8 << 30, usedBytes=2 << 30, usagePercent=25),
        networks=[pb.NetworkMetrics(interface="eth0", receiveRate=100, transmitRate=50),
                  pb.NetworkMetrics(interface="lo", receiveRate=1, transmitRate=1)],
        io=pb.IOMetrics(readRate=4096, writeRate=0),
        disks=[pb.DiskMetrics(mountPoint="/", device="sda1", usedBytes=1 << 30,
                              totalBytes=4 << 30, usagePercent=25)],
        processes=pb.ProcessMetrics(topByCPU=[pb.ProcessInfo(pid=n) for n in range(20)]),
    )  # fmt: skip
    point = charts.host_point(sample)
    assert point["time"] == 1767261602.0 and point["cores"] == [10, 50]
    assert point["network"] == [101, 51] and point["disk"] == [4096, 0]
    tables = charts.host_tables(sample)
    assert tables["memory"] == "2.0 GB of 8.0 GB (25.0 %)"
    assert tables["disks"] == [("/", "sda1", "1.0 GB", "4.0 GB", "25.0 %")]
    assert [n[0] for n in tables["networks"]] == ["eth0", "lo"]
    assert len(tables["top_cpu"]) == charts.TOP_PROCESSES
    # no per-core figures: the whole CPU as one
    assert charts.host_point(pb.SystemMetricsRes(cpu=pb.CPUMetrics(usagePercent=7)))["cores"] == [7]


def test_the_gpu_chart_is_there_only_for_a_job_with_gpus() -> None:
    assert not views.has_gpus(pb.GetJobStatusRes(uuid="j"))
    assert views.has_gpus(pb.GetJobStatusRes(gpu_count=1))
    assert views.has_gpus(pb.GetJobStatusRes(gpu_indices=[0]))
    assert views.has_gpus(pb.GetJobStatusRes(gpu_ids=["GPU-1"]))
