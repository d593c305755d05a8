"""What the charts and their summary tables show, from the API's metric
messages: pure functions, no I/O. Points go to the browser as JSON arrays
(uPlot's columns are built there)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joblet.ui.views import parse_time

Point = list[float | None]

# the job page's points: [time s, CPU %, memory B, memory limit B, read B/s,
# write B/s, rx B/s, tx B/s, GPU utilisation % (mean), GPU memory B (sum)]
JOB_POINT = ("time", "cpu", "memory", "limit", "read", "write", "rx", "tx", "gpu", "gpuMemory")


def job_point(sample: Any) -> Point:
    gpus = list(sample.gpu)
    gpu = sum(g.utilization for g in gpus) / len(gpus) if gpus else None
    gpu_memory = float(sum(g.memoryUsed for g in gpus)) if gpus else None
    limit = float(sample.limits.memory) if sample.limits.memory > 0 else None
    return [
        float(sample.timestamp), sample.cpu.usagePercent, float(sample.memory.current), limit,
        sample.io.readBPS, sample.io.writeBPS, sample.network.rxBPS, sample.network.txBPS,
        gpu, gpu_memory,
    ]  # fmt: skip


@dataclass(frozen=True)
class SummaryRow:
    metric: str
    values: tuple[str, ...]  # min, avg, p50, p95, p99, max, formatted


SUMMARY_COLUMNS = ("min", "avg", "p50", "p95", "p99", "max")
UNITS = (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10))


def human_bytes(value: float, suffix: str = "") -> str:
    for unit, size in UNITS:
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}{suffix}"
    return f"{value:.0f} B{suffix}"


def summary_rows(summary: Any) -> list[SummaryRow]:
    """GetJobMetricsSummary's aggregates, one row each, in their units."""
    shown = (
        ("CPU", summary.cpu, lambda v: f"{v:.1f} %"),
        ("memory", summary.memory, human_bytes),
        ("IO (read + write)", summary.io, lambda v: human_bytes(v, "/s")),
        ("network (rx + tx)", summary.network, lambda v: human_bytes(v, "/s")),
    )
    return [
        SummaryRow(name, tuple(fmt(getattr(agg, col)) for col in SUMMARY_COLUMNS))
        for name, agg, fmt in shown
    ]


def host_point(sample: Any) -> dict[str, Any]:
    """One StreamSystemMetrics sample for the host page's charts."""
    nets = list(sample.networks)
    return {
        "time": _epoch(sample.timestamp),
        "cores": list(sample.cpu.perCoreUsage) or [sample.cpu.usagePercent],
        "memory": [float(sample.memory.usedBytes), float(sample.memory.totalBytes)],
        "network": [sum(n.receiveRate for n in nets), sum(n.transmitRate for n in nets)],
        "disk": [sample.io.readRate, sample.io.writeRate],
    }


def _epoch(text: str) -> float:
    moment = parse_time(text)
    return moment.timestamp() if moment else 0.0


TOP_PROCESSES = 8


def host_tables(sample: Any) -> dict[str, Any]:
    """The host page's tables of one sample: memory, disks, network
    interfaces and the processes that use the most CPU and memory."""
    mem = sample.memory
    return {
        "memory": f"{human_bytes(mem.usedBytes)} of {human_bytes(mem.totalBytes)}"
        f" ({mem.usagePercent:.1f} %)",
        "swap": f"{human_bytes(mem.swapUsed)} of {human_bytes(mem.swapTotal)}",
        "load": ", ".join(f"{v:.2f}" for v in sample.cpu.loadAverage),
        "disks": [
            (
                d.mountPoint,
                d.device,
                human_bytes(d.usedBytes),
                human_bytes(d.totalBytes),
                f"{d.usagePercent:.1f} %",
            )
            for d in sample.disks
        ],
        "networks": [
            (
                n.interface,
                human_bytes(n.receiveRate, "/s"),
                human_bytes(n.transmitRate, "/s"),
                human_bytes(n.bytesReceived),
                human_bytes(n.bytesSent),
            )
            for n in sample.networks
        ],
        "top_cpu": list(sample.processes.topByCPU)[:TOP_PROCESSES],
        "top_memory": list(sample.processes.topByMemory)[:TOP_PROCESSES],
        "processes": sample.processes.totalProcesses,
    }
