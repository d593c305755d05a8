"""A raw reading of one job (cgroup counters, network and process counts) and
the pure builders that make it from the texts of v1 or v2 cgroup files.

Counters keep the proto field names of JobCPUMetrics / JobMemoryMetrics as keys
so the mapping to the wire stays one loop. What a host cannot give stays 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from joblet.metrics.parsers import NetCounters
from joblet.resources.stats import (
    Pressure,
    parse_blkio_bytes,
    parse_flat_keyed,
    parse_io_stat,
    parse_limit,
    parse_psi,
    pick_keyed,
)

_USER_HZ = 100  # cpuacct.stat ticks; USER_HZ is 100 on every Linux ABI

# v2 memory.stat key -> JobMemoryMetrics field (cgroup-v2.rst "memory.stat").
V2_MEMORY_STAT = {
    "anon": "anon", "file": "file", "kernel_stack": "kernelStack", "slab": "slab",
    "sock": "sock", "shmem": "shmem", "file_mapped": "fileMapped",
    "file_dirty": "fileDirty", "file_writeback": "fileWriteback",
    "pgfault": "pgFault", "pgmajfault": "pgMajFault",
}  # fmt: skip
# v1 memory.stat hierarchical totals -> the same fields (cgroup-v1/memory.rst 5.2).
# v1 has no kernel stack / slab breakdown: those stay 0.
V1_MEMORY_STAT = {
    "total_rss": "anon", "total_cache": "file", "total_shmem": "shmem",
    "total_mapped_file": "fileMapped", "total_dirty": "fileDirty",
    "total_writeback": "fileWriteback", "total_pgfault": "pgFault",
    "total_pgmajfault": "pgMajFault",
}  # fmt: skip
V2_IO_KEYS = ("rbytes", "wbytes", "rios", "wios", "dbytes", "dios")
_V1_IO_OPS = ("Read", "Write", "Discard")


@dataclass(frozen=True)
class DeviceIO:
    read_bytes: int = 0
    write_bytes: int = 0
    read_ops: int = 0
    write_ops: int = 0
    discard_bytes: int = 0
    discard_ops: int = 0


@dataclass(frozen=True)
class CgroupReading:
    cpu: Mapping[str, int] = field(default_factory=dict)  # JobCPUMetrics counter names
    memory: Mapping[str, int] = field(default_factory=dict)  # JobMemoryMetrics names
    io: Mapping[str, DeviceIO] = field(default_factory=dict)  # "MAJ:MIN" -> counters
    pressure: Mapping[str, Mapping[str, Pressure]] = field(default_factory=dict)
    pids_current: int = 0
    pids_max: int = 0
    pids_events: int = 0  # times fork failed at pids.max


@dataclass(frozen=True)
class ProcessCounts:
    threads: int = 0
    running: int = 0
    sleeping: int = 0
    stopped: int = 0
    zombie: int = 0
    open_fds: int = 0
    max_fds: int = 0


@dataclass(frozen=True)
class Snapshot:
    wall_ns: int  # Unix time of the reading
    mono_ns: int  # monotonic time, for rates
    cgroup: CgroupReading
    net: Mapping[str, NetCounters] = field(default_factory=dict)
    procs: ProcessCounts = field(default_factory=ProcessCounts)


def v2_reading(files: Mapping[str, str]) -> CgroupReading:
    """From the texts of a v2 group's files, keyed by file name (absent: not offered)."""
    cpu = parse_flat_keyed(files.get("cpu.stat", ""))
    stat = pick_keyed(files.get("memory.stat", ""), V2_MEMORY_STAT)
    events = parse_flat_keyed(files.get("memory.events", ""))
    memory = {name: stat.get(key, 0) for key, name in V2_MEMORY_STAT.items()}
    memory |= {
        "current": _number(files, "memory.current"),
        "max": _number(files, "memory.max"),
        "oomEvents": events.get("oom", 0),
        "oomKill": events.get("oom_kill", 0),
    }
    return CgroupReading(
        cpu={
            "usageUsec": cpu.get("usage_usec", 0),
            "userUsec": cpu.get("user_usec", 0),
            "systemUsec": cpu.get("system_usec", 0),
            "nrPeriods": cpu.get("nr_periods", 0),
            "nrThrottled": cpu.get("nr_throttled", 0),
            "throttledUsec": cpu.get("throttled_usec", 0),
        },
        memory=memory,
        io={dev: _v2_device(f) for dev, f in parse_io_stat(files.get("io.stat", "")).items()},
        pressure=_pressure(files),
        pids_current=_number(files, "pids.current"),
        pids_max=_number(files, "pids.max"),
        pids_events=parse_flat_keyed(files.get("pids.events", "")).get("max", 0),
    )


def v1_reading(files: Mapping[str, str]) -> CgroupReading:
    """From the texts of a v1 job's files across hierarchies, keyed by file name."""
    cpu = parse_flat_keyed(files.get("cpu.stat", ""))
    ticks = parse_flat_keyed(files.get("cpuacct.stat", ""))
    stat = pick_keyed(files.get("memory.stat", ""), V1_MEMORY_STAT)
    oom = parse_flat_keyed(files.get("memory.oom_control", ""))
    per_tick = 1_000_000 // _USER_HZ
    memory = {name: stat.get(key, 0) for key, name in V1_MEMORY_STAT.items()}
    memory |= {
        "current": _number(files, "memory.usage_in_bytes"),
        "max": _number(files, "memory.limit_in_bytes"),
        # TCP socket buffers are the one kmem part v1 accounts separately.
        "sock": _number(files, "memory.kmem.tcp.usage_in_bytes"),
        # v1 has no OOM event counter (under_oom is a state): kills are all it counts.
        "oomEvents": oom.get("oom_kill", 0),
        "oomKill": oom.get("oom_kill", 0),
    }
    return CgroupReading(
        cpu={
            "usageUsec": _number(files, "cpuacct.usage") // 1000,
            "userUsec": ticks.get("user", 0) * per_tick,
            "systemUsec": ticks.get("system", 0) * per_tick,
            "nrPeriods": cpu.get("nr_periods", 0),
            "nrThrottled": cpu.get("nr_throttled", 0),
            "throttledUsec": cpu.get("throttled_time", 0) // 1000,
        },
        memory=memory,
        io=_v1_devices(files),
        pids_current=_number(files, "pids.current"),
        pids_max=_number(files, "pids.max"),
        pids_events=parse_flat_keyed(files.get("pids.events", "")).get("max", 0),
    )


def _v2_device(fields: Mapping[str, int]) -> DeviceIO:
    return DeviceIO(*(fields.get(key, 0) for key in V2_IO_KEYS))


def _v1_devices(files: Mapping[str, str]) -> dict[str, DeviceIO]:
    size = parse_blkio_bytes(files.get("blkio.throttle.io_service_bytes_recursive", ""))
    ops = parse_blkio_bytes(files.get("blkio.throttle.io_serviced_recursive", ""))
    out: dict[str, DeviceIO] = {}
    for dev in sorted(size.keys() | ops.keys()):
        b, o = size.get(dev, {}), ops.get(dev, {})
        read, write, discard = ((b.get(k, 0), o.get(k, 0)) for k in _V1_IO_OPS)
        out[dev] = DeviceIO(read[0], write[0], read[1], write[1], discard[0], discard[1])
    return out


def _pressure(files: Mapping[str, str]) -> dict[str, dict[str, Pressure]]:
    out: dict[str, dict[str, Pressure]] = {}
    for resource in ("cpu", "memory", "io"):
        text = files.get(f"{resource}.pressure")
        if text:
            out[resource] = parse_psi(text)
    return out


def _number(files: Mapping[str, str], name: str) -> int:
    text = files.get(name)
    return parse_limit(text) if text else 0


def with_final_network(current: Snapshot, previous: Snapshot | None) -> Snapshot:
    """The final reading of a job comes after its init exited, when its network
    namespace (and the counters in it) is gone: its last known counters are its
    final ones. A reading that has counters keeps them."""
    if current.net or previous is None or not previous.net:
        return current
    return replace(current, net=previous.net)
