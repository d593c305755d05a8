"""Pure: min/max/avg/p50/p95/p99 of a job's samples over a period.

Series: cpu = usagePercent; memory = current bytes; io = readBPS + writeBPS;
network = rxBPS + txBPS. The period ends at the newest sample (not now: a
finished job still has a summary); 0 means every sample. Percentiles
interpolate linearly between the two nearest ranks (numpy's default "linear"
method), so p50 of [1, 2, 3, 4] is 2.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from joblet.api import joblet_pb2 as pb


def in_range(timestamp: int, from_ns: int, to_ns: int) -> bool:
    """from_ns <= timestamp <= to_ns, where 0 leaves that end open."""
    return (not from_ns or timestamp >= from_ns) and (not to_ns or timestamp <= to_ns)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of an ascending sequence; 0 when empty."""
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def aggregate(values: Sequence[float]) -> pb.JobMetricsAggregate:
    if not values:
        return pb.JobMetricsAggregate()
    ordered = sorted(values)
    return pb.JobMetricsAggregate(
        min=ordered[0],
        max=ordered[-1],
        avg=math.fsum(ordered) / len(ordered),
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
    )


# (timestamp_ns, cpu %, memory bytes, io B/s, network B/s): what a summary needs.
Point = tuple[int, float, float, float, float]


def point(s: pb.JobMetricsSample) -> Point:
    return (
        s.timestamp,
        s.cpu.usagePercent,
        float(s.memory.current),
        s.io.readBPS + s.io.writeBPS,
        s.network.rxBPS + s.network.txBPS,
    )


def summarize(
    samples: Sequence[pb.JobMetricsSample], period_s: int = 0
) -> pb.JobMetricsSummaryResponse:
    return summarize_points([point(s) for s in samples], period_s)


def summarize_points(points: Sequence[Point], period_s: int = 0) -> pb.JobMetricsSummaryResponse:
    """The summary from precomputed points (the hub keeps them per sample)."""
    if period_s > 0 and points:
        start = max(p[0] for p in points) - period_s * 1_000_000_000
        points = [p for p in points if p[0] >= start]
    _, cpu, memory, io, network = zip(*points, strict=True) if points else ((),) * 5
    return summarize_series(cpu, memory, io, network)


def summarize_series(
    cpu: Sequence[float], memory: Sequence[float], io: Sequence[float], network: Sequence[float]
) -> pb.JobMetricsSummaryResponse:
    """The summary of the four series (any order within each)."""
    return pb.JobMetricsSummaryResponse(
        cpu=aggregate(cpu), memory=aggregate(memory), io=aggregate(io), network=aggregate(network)
    )
