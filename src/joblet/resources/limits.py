"""Pure translation of `Limits` into the cgroup file writes each backend performs."""

from __future__ import annotations

from dataclasses import dataclass

from joblet.errors import IsolationError
from joblet.resources.interface import Limits

CPU_PERIOD_USEC = 100_000
_MIN_QUOTA_USEC = 1_000  # the kernel rejects cfs quotas under 1 ms


@dataclass(frozen=True)
class LimitWrite:
    """Write `value` to `filename` in the job's group of `controller`'s hierarchy.

    Optional writes are skipped where the file does not exist (memory.swap.max
    without swap accounting, memory.memsw.* without swapaccount=1).
    """

    controller: str
    filename: str
    value: str
    required: bool = True


def cpu_quota_usec(percent: int, period_usec: int = CPU_PERIOD_USEC) -> int:
    """CFS quota for `percent` of one CPU per period (100 = one full core)."""
    return max(_MIN_QUOTA_USEC, percent * period_usec // 100)


def check_io_devices(limits: Limits) -> None:
    if limits.max_io_bps > 0 and not limits.io_devices:
        raise IsolationError("an IO limit was asked for but no block device backs the job")


def v2_limit_writes(limits: Limits) -> tuple[LimitWrite, ...]:
    check_io_devices(limits)
    writes: list[LimitWrite] = []
    if limits.max_cpu_percent > 0:
        quota = cpu_quota_usec(limits.max_cpu_percent)
        writes.append(LimitWrite("cpu", "cpu.max", f"{quota} {CPU_PERIOD_USEC}"))
    if limits.cpu_cores:
        # cpuset.mems stays empty: an empty v2 cpuset.mems uses the parent's.
        writes.append(LimitWrite("cpuset", "cpuset.cpus", limits.cpu_cores))
    if limits.max_memory_bytes > 0:
        writes += [
            LimitWrite("memory", "memory.max", str(limits.max_memory_bytes)),
            # Without this the job swaps instead of hitting its limit.
            LimitWrite("memory", "memory.swap.max", "0", required=False),
        ]
    # An OOM kill takes the whole job, not one process of it.
    writes.append(LimitWrite("memory", "memory.oom.group", "1", required=False))
    if limits.max_io_bps > 0:
        bps = limits.max_io_bps
        writes += [
            LimitWrite("io", "io.max", f"{dev} rbps={bps} wbps={bps}") for dev in limits.io_devices
        ]
    if limits.max_pids > 0:
        writes.append(LimitWrite("pids", "pids.max", str(limits.max_pids)))
    return tuple(writes)


# The largest rate blk-throttle keeps as a rule (U64_MAX itself removes it).
V1_COUNT_ONLY_BPS = 2**64 - 2


def v1_limit_writes(limits: Limits, parent_cpus: str, parent_mems: str) -> tuple[LimitWrite, ...]:
    """Writes for a v1 job group, cpuset first.

    A new v1 cpuset group has empty cpus and mems, and attaching a task to it
    fails with ENOSPC, so both are always set, before any pid is attached.
    """
    check_io_devices(limits)
    writes = [
        LimitWrite("cpuset", "cpuset.cpus", limits.cpu_cores or parent_cpus),
        LimitWrite("cpuset", "cpuset.mems", parent_mems),
    ]
    if limits.max_cpu_percent > 0:
        quota = cpu_quota_usec(limits.max_cpu_percent)
        writes += [
            LimitWrite("cpu", "cpu.cfs_period_us", str(CPU_PERIOD_USEC)),
            LimitWrite("cpu", "cpu.cfs_quota_us", str(quota)),
        ]
    if limits.max_memory_bytes > 0:
        mem = str(limits.max_memory_bytes)
        # memsw must stay >= limit_in_bytes, so the plain limit goes first.
        writes += [
            LimitWrite("memory", "memory.limit_in_bytes", mem),
            LimitWrite("memory", "memory.memsw.limit_in_bytes", mem, required=False),
        ]
    if limits.max_io_bps > 0:
        for dev in limits.io_devices:
            line = f"{dev} {limits.max_io_bps}"
            writes += [
                LimitWrite("blkio", "blkio.throttle.read_bps_device", line),
                LimitWrite("blkio", "blkio.throttle.write_bps_device", line),
            ]
    if limits.max_pids > 0:
        writes.append(LimitWrite("pids", "pids.max", str(limits.max_pids)))
    return tuple(writes)


def v1_counting_writes(limits: Limits) -> tuple[LimitWrite, ...]:
    """Rules that never throttle, on the jobs' disks when no IO limit is
    asked: recent kernels (6.18 here) count a v1 group's IO in
    blkio.throttle.* only for a direction that has a rule, so without them
    a job's IO metrics stay 0. Best effort: a refused rule costs the
    figures, never the job."""
    if limits.max_io_bps > 0:
        return ()
    return tuple(
        LimitWrite("blkio", filename, f"{dev} {V1_COUNT_ONLY_BPS}")
        for dev in limits.io_devices
        for filename in ("blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device")
    )


def has_limits(limits: Limits) -> bool:
    """True when `limits` asks for anything at all (io_devices alone is not a limit)."""
    return any(
        (
            limits.max_cpu_percent,
            limits.cpu_cores,
            limits.max_memory_bytes,
            limits.max_io_bps,
            limits.max_pids,
        )
    )
