from __future__ import annotations

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.metrics.summary import aggregate, percentile, summarize

S = 1_000_000_000


def sample(t: int, cpu: float, mem: int, io: float = 0.0, net: float = 0.0) -> pb.JobMetricsSample:
    return pb.JobMetricsSample(
        jobId="j",
        timestamp=t * S,
        cpu=pb.JobCPUMetrics(usagePercent=cpu),
        memory=pb.JobMemoryMetrics(current=mem),
        io=pb.JobIOMetrics(readBPS=io, writeBPS=io),
        network=pb.JobNetworkMetrics(rxBPS=net, txBPS=2 * net),
    )


def test_percentiles_over_known_series() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([], 50) == 0.0 and percentile([7.0], 99) == 7.0
    agg = aggregate(list(reversed(values)))
    assert (agg.min, agg.max, agg.avg) == (1.0, 100.0, 50.5)


def test_summary_of_each_series_and_period() -> None:
    samples = [sample(t, cpu=float(t), mem=t * 1000, io=t, net=t) for t in range(1, 101)]
    res = summarize(samples)
    assert res.cpu.p50 == pytest.approx(50.5) and res.cpu.max == 100.0
    assert res.memory.min == 1000 and res.memory.p99 == pytest.approx(99010)
    assert res.io.max == 200.0  # read + write
    assert res.network.max == 300.0  # rx + tx
    last10 = summarize(samples, period_s=9)  # the newest sample's time minus 9 s: t = 91..100
    assert (last10.cpu.min, last10.cpu.max, last10.cpu.avg) == (91.0, 100.0, 95.5)


def test_empty_summary_is_zero() -> None:
    assert summarize([]) == pb.JobMetricsSummaryResponse(
        cpu=pb.JobMetricsAggregate(), memory=pb.JobMetricsAggregate(),
        io=pb.JobMetricsAggregate(), network=pb.JobMetricsAggregate(),
    )  # fmt: skip
