"""Pure: two snapshots of a job to one JobMetricsSample (the mapping layer to
the wire). Rates and percentages come from the difference to the previous
snapshot; the first sample of a job has none (0), as a counter reset does.

Units: usagePercent is of one core (100 = one full core, like maxCpu);
*BPS are bytes per second; timestamp is Unix nanoseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from joblet.api import joblet_pb2 as pb
from joblet.metrics.parsers import NetCounters
from joblet.metrics.snapshot import DeviceIO, Snapshot
from joblet.resources.interface import Limits
from joblet.resources.stats import Pressure

_PSI_FIELDS = (("some", "Some"), ("full", "Full"))
_NO_IO = DeviceIO()
_NO_NET = NetCounters()


@dataclass(frozen=True)
class SampleContext:
    job_id: str
    interval_s: int
    cgroup_path: str
    limits: Limits


def delta(current: int, previous: int) -> int:
    """A counter's increase; 0 when it went back (counter reset, group re-created)."""
    return current - previous if current >= previous else 0


def rate(current: int, previous: int, seconds: float) -> float:
    return delta(current, previous) / seconds if seconds > 0 else 0.0


def percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


def build_sample(ctx: SampleContext, cur: Snapshot, prev: Snapshot | None) -> pb.JobMetricsSample:
    seconds = (cur.mono_ns - prev.mono_ns) / 1e9 if prev is not None else 0.0
    return pb.JobMetricsSample(
        jobId=ctx.job_id,
        timestamp=cur.wall_ns,
        sampleIntervalSeconds=ctx.interval_s,
        cpu=_cpu(cur, prev, seconds),
        memory=_memory(cur),
        io=_io(cur, prev, seconds),
        network=_network(cur, prev, seconds),
        process=_process(cur),
        cgroupPath=ctx.cgroup_path,
        limits=pb.JobResourceLimits(
            cpu=ctx.limits.max_cpu_percent,
            memory=ctx.limits.max_memory_bytes,
            io=ctx.limits.max_io_bps,
        ),
    )


def _cpu(cur: Snapshot, prev: Snapshot | None, seconds: float) -> pb.JobCPUMetrics:
    c = cur.cgroup.cpu
    msg = _filled(pb.JobCPUMetrics(), {**c, **_psi(cur, "cpu")})
    if prev is not None and seconds > 0:
        p = prev.cgroup.cpu
        used = delta(c.get("usageUsec", 0), p.get("usageUsec", 0))
        msg.usagePercent = percent(used, seconds * 1e6)
        periods = delta(c.get("nrPeriods", 0), p.get("nrPeriods", 0))
        throttled = delta(c.get("nrThrottled", 0), p.get("nrThrottled", 0))
        msg.throttlePercent = percent(throttled, periods)
    return msg


def _memory(cur: Snapshot) -> pb.JobMemoryMetrics:
    m = cur.cgroup.memory
    msg = _filled(pb.JobMemoryMetrics(), {**m, **_psi(cur, "memory")})
    msg.usagePercent = percent(m.get("current", 0), m.get("max", 0))
    return msg


def _io(cur: Snapshot, prev: Snapshot | None, seconds: float) -> pb.JobIOMetrics:
    now, before = _io_total(cur.cgroup.io), _io_total(prev.cgroup.io if prev else {})
    msg = pb.JobIOMetrics(
        totalReadBytes=now.read_bytes,
        totalWriteBytes=now.write_bytes,
        totalReadOps=now.read_ops,
        totalWriteOps=now.write_ops,
        totalDiscardBytes=now.discard_bytes,
        totalDiscardOps=now.discard_ops,
    )
    _filled(msg, _psi(cur, "io"))
    for dev, d in cur.cgroup.io.items():
        msg.devices[dev].CopyFrom(_device(dev, d))
    if prev is not None:
        msg.readBPS = rate(now.read_bytes, before.read_bytes, seconds)
        msg.writeBPS = rate(now.write_bytes, before.write_bytes, seconds)
        msg.readIOPS = rate(now.read_ops, before.read_ops, seconds)
        msg.writeIOPS = rate(now.write_ops, before.write_ops, seconds)
    return msg


def _device(name: str, d: DeviceIO) -> pb.DeviceIOMetrics:
    return pb.DeviceIOMetrics(
        device=name,
        readBytes=d.read_bytes,
        writeBytes=d.write_bytes,
        readOps=d.read_ops,
        writeOps=d.write_ops,
        discardBytes=d.discard_bytes,
        discardOps=d.discard_ops,
    )


def _io_total(devices: Mapping[str, DeviceIO]) -> DeviceIO:
    if len(devices) <= 1:  # most jobs: no device or one (summing costs more than the rest)
        return next(iter(devices.values()), _NO_IO)
    fields = DeviceIO.__dataclass_fields__
    return DeviceIO(**{f: sum(getattr(d, f) for d in devices.values()) for f in fields})


def net_total(interfaces: Mapping[str, NetCounters]) -> NetCounters:
    """Sum over interfaces; loopback counts (traffic inside the job's namespace)."""
    if len(interfaces) <= 1:
        return next(iter(interfaces.values()), _NO_NET)
    fields = NetCounters.__dataclass_fields__
    return NetCounters(**{f: sum(getattr(n, f) for n in interfaces.values()) for f in fields})


def _network(cur: Snapshot, prev: Snapshot | None, seconds: float) -> pb.JobNetworkMetrics:
    now = net_total(cur.net)
    msg = pb.JobNetworkMetrics(
        totalRxBytes=now.rx_bytes,
        totalTxBytes=now.tx_bytes,
        totalRxPackets=now.rx_packets,
        totalTxPackets=now.tx_packets,
        totalRxErrors=now.rx_errors,
        totalTxErrors=now.tx_errors,
        totalRxDropped=now.rx_dropped,
        totalTxDropped=now.tx_dropped,
    )
    for name, n in cur.net.items():
        msg.interfaces[name].CopyFrom(
            pb.NetworkInterfaceMetrics(
                interface=name,
                rxBytes=n.rx_bytes,
                txBytes=n.tx_bytes,
                rxPackets=n.rx_packets,
                txPackets=n.tx_packets,
                rxErrors=n.rx_errors,
                txErrors=n.tx_errors,
                rxDropped=n.rx_dropped,
                txDropped=n.tx_dropped,
            )
        )
    if prev is not None:
        before = net_total(prev.net)
        msg.rxBPS = rate(now.rx_bytes, before.rx_bytes, seconds)
        msg.txBPS = rate(now.tx_bytes, before.tx_bytes, seconds)
    return msg


def _process(cur: Snapshot) -> pb.JobProcessMetrics:
    p, g = cur.procs, cur.cgroup
    return pb.JobProcessMetrics(
        current=g.pids_current,
        max=g.pids_max,
        events=g.pids_events,
        threads=p.threads,
        running=p.running,
        sleeping=p.sleeping,
        stopped=p.stopped,
        zombie=p.zombie,
        openFDs=p.open_fds,
        maxFDs=p.max_fds,
    )


_M = TypeVar("_M", bound=Message)


def _filled(msg: _M, values: Mapping[str, float]) -> _M:
    for name, value in values.items():
        setattr(msg, name, value)
    return msg


def _psi(cur: Snapshot, resource: str) -> dict[str, float]:
    found: Mapping[str, Pressure] = cur.cgroup.pressure.get(resource, {})
    out: dict[str, float] = {}
    for kind, title in _PSI_FIELDS:
        p = found.get(kind)
        if p is not None:
            out |= {
                f"pressure{title}10": p.avg10,
                f"pressure{title}60": p.avg60,
                f"pressure{title}300": p.avg300,
            }
    return out
