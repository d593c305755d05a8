"""Rates and percentages from two snapshots; the mapping to JobMetricsSample."""

from __future__ import annotations

from joblet.metrics.compute import SampleContext, build_sample, delta, percent, rate
from joblet.metrics.parsers import NetCounters
from joblet.metrics.snapshot import (
    CgroupReading,
    DeviceIO,
    ProcessCounts,
    Snapshot,
    with_final_network,
)
from joblet.resources.interface import Limits
from joblet.resources.stats import Pressure

S = 1_000_000_000
CTX = SampleContext("job-1", 5, "/sys/fs/cgroup/joblet/job-1", Limits(50, "", 1 << 30, 0))


def snap(t_s: float, usage: int, periods: int, throttled: int, *, wbytes: int, rx: int) -> Snapshot:
    return Snapshot(
        wall_ns=int(1_700_000_000 * S + t_s * S),
        mono_ns=int(t_s * S),
        cgroup=CgroupReading(
            cpu={"usageUsec": usage, "nrPeriods": periods, "nrThrottled": throttled},
            memory={"current": 256 << 20, "max": 1 << 30, "anon": 200 << 20},
            io={"8:0": DeviceIO(write_bytes=wbytes, write_ops=wbytes // 4096)},
            pressure={"memory": {"some": Pressure(1.0, 2.0, 3.0, 9)}},
            pids_current=3,
            pids_max=64,
        ),
        net={"lo": NetCounters(rx_bytes=rx, tx_bytes=rx), "eth0": NetCounters(rx_bytes=rx)},
        procs=ProcessCounts(threads=5, running=1, sleeping=2, open_fds=9, max_fds=1024),
    )


def test_counter_math() -> None:
    assert delta(10, 4) == 6 and delta(3, 10) == 0  # a reset is not a negative rate
    assert rate(150, 50, 2.0) == 50.0 and rate(1, 0, 0.0) == 0.0
    assert percent(1, 4) == 25.0 and percent(1, 0) == 0.0


def test_rates_from_two_snapshots() -> None:
    before = snap(0, usage=1_000_000, periods=10, throttled=0, wbytes=0, rx=0)
    after = snap(2, usage=2_000_000, periods=30, throttled=15, wbytes=50 << 20, rx=4_000_000)
    s = build_sample(CTX, after, before)
    assert s.cpu.usagePercent == 50.0  # 1 s of CPU in 2 s: half a core
    assert s.cpu.throttlePercent == 75.0
    assert s.io.writeBPS == (50 << 20) / 2 and s.io.totalWriteBytes == 50 << 20
    assert s.io.devices["8:0"].writeOps == (50 << 20) // 4096
    assert s.network.totalRxBytes == 8_000_000 and s.network.rxBPS == 4_000_000.0
    assert s.network.txBPS == 2_000_000.0
    assert s.memory.usagePercent == 25.0 and s.memory.anon == 200 << 20
    assert (s.memory.pressureSome10, s.memory.pressureSome300) == (1.0, 3.0)
    assert s.cpu.pressureSome10 == 0.0  # not offered: 0, never invented
    assert (s.process.current, s.process.max, s.process.threads, s.process.openFDs) == (3, 64, 5, 9)
    assert s.timestamp == after.wall_ns and s.sampleIntervalSeconds == 5
    assert (s.limits.cpu, s.limits.memory) == (50, 1 << 30)
    assert s.cgroupPath == CTX.cgroup_path and s.jobId == "job-1"


def test_first_sample_has_totals_but_no_rates() -> None:
    s = build_sample(CTX, snap(1, 5_000_000, 10, 2, wbytes=4096, rx=100), None)
    assert s.cpu.usageUsec == 5_000_000 and s.cpu.usagePercent == 0.0
    assert s.io.writeBPS == 0.0 and s.network.rxBPS == 0.0


def test_final_reading_keeps_the_last_network_counters() -> None:
    lo = {"lo": NetCounters(rx_bytes=10, tx_bytes=10)}
    before = Snapshot(1, 1, CgroupReading(), lo)
    gone = Snapshot(2, 2, CgroupReading())  # the namespace ended with the job
    assert with_final_network(gone, before).net == lo
    assert with_final_network(gone, None).net == {}
    fresh = Snapshot(2, 2, CgroupReading(), {"lo": NetCounters(rx_bytes=20)})
    assert with_final_network(fresh, before) is fresh
