"""Pure parsers of cgroup file formats, and the builders of `CgroupStats`.

Formats (Documentation/admin-guide/cgroup-v2.rst, "Interface Files"; v1 docs):
flat keyed ("key value" per line: cpu.stat, memory.stat, memory.events,
memory.oom_control), nested keyed ("8:0 rbytes=1 wbytes=2": io.stat), cpu.max
("quota period" or "max period"), v1 blkio ("8:0 Read 123"), PSI
("some avg10=0.00 avg60=0.00 avg300=0.00 total=0").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from joblet.resources.interface import CgroupStats

# v1 reports "unlimited" as LONG_MAX rounded down to a page multiple.
_V1_UNLIMITED_FLOOR = 1 << 62
_USER_HZ = 100  # cpuacct.stat counts in USER_HZ ticks (always 100 on Linux)


@dataclass(frozen=True)
class Pressure:
    avg10: float
    avg60: float
    avg300: float
    total_usec: int


def parse_flat_keyed(text: str) -> dict[str, int]:
    """'key value' lines to a dict; lines that are not 'word integer' are skipped."""
    # Fast path, the kernel's usual layout: every line one key and one value.
    tokens = text.split()
    lines = text.splitlines()
    if len(tokens) == 2 * len(lines):
        with contextlib.suppress(ValueError):  # a value that is no integer: line by line
            return dict(zip(tokens[0::2], map(int, tokens[1::2]), strict=True))
    out: dict[str, int] = {}
    for line in lines:
        parts = line.split()
        # Inline, not _is_int: the samplers parse some 200 lines per job each interval.
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def pick_keyed(text: str, keys: Iterable[str]) -> dict[str, int]:
    """Only `keys` of a flat-keyed file, as parse_flat_keyed reads them: a
    sample wants 8 of memory.stat's ~70 lines, and converting the others
    cost more than reading the file."""
    tokens = text.split()
    if len(tokens) != 2 * len(text.splitlines()):
        found = parse_flat_keyed(text)
        return {key: found[key] for key in keys if key in found}
    pairs = dict(zip(tokens[0::2], tokens[1::2], strict=True))
    out: dict[str, int] = {}
    for key in keys:
        value = pairs.get(key)
        if value is not None and value.lstrip("-").isdigit():
            out[key] = int(value)
    return out


def parse_nested_keyed(text: str) -> dict[str, dict[str, str]]:
    """'name k=v k=v' lines (io.stat, io.max, PSI) to {name: {k: v}}."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, *pairs = line.split()
        out[name] = dict(p.split("=", 1) for p in pairs if "=" in p)
    return out


def parse_limit(text: str) -> int:
    """A single-value limit file ('max', '-1' or a number); 0 means unlimited."""
    value = text.strip()
    if value in ("max", "-1", ""):
        return 0
    number = int(value)
    return 0 if number >= _V1_UNLIMITED_FLOOR else number


def parse_cpu_max(text: str) -> tuple[int, int]:
    """cpu.max to (quota_usec, period_usec); quota 0 means unlimited."""
    quota, period = text.split()
    return (0 if quota == "max" else int(quota)), int(period)


def parse_io_stat(text: str) -> dict[str, dict[str, int]]:
    """v2 io.stat to {"MAJ:MIN": {"rbytes": n, "wbytes": n, ...}}."""
    return {
        dev: {k: int(v) for k, v in fields.items() if _is_int(v)}
        for dev, fields in parse_nested_keyed(text).items()
    }


def parse_blkio_bytes(text: str) -> dict[str, dict[str, int]]:
    """v1 blkio.*io_service_bytes to {"MAJ:MIN": {"Read": n, "Write": n, ...}}.

    The trailing 'Total N' line (no device) is left out.
    """
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and _is_int(parts[2]):
            out.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return out


def parse_psi(text: str) -> dict[str, Pressure]:
    """A PSI file (cpu.pressure, /proc/pressure/memory) to {"some"|"full": Pressure}."""
    return {
        kind: Pressure(
            avg10=float(f["avg10"]),
            avg60=float(f["avg60"]),
            avg300=float(f["avg300"]),
            total_usec=int(f["total"]),
        )
        for kind, f in parse_nested_keyed(text).items()
    }


def parse_cpu_list(text: str) -> frozenset[int]:
    """A cpuset list such as '0-2,5' to {0, 1, 2, 5}."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return frozenset(cpus)


def v2_stats(files: Mapping[str, str]) -> CgroupStats:
    """Stats from the texts of a v2 job group's files (missing files: absent keys)."""
    cpu = parse_flat_keyed(files.get("cpu.stat", ""))
    events = parse_flat_keyed(files.get("memory.events", ""))
    io = parse_io_stat(files.get("io.stat", ""))
    return CgroupStats(
        cpu_usage_usec=cpu.get("usage_usec", 0),
        cpu_user_usec=cpu.get("user_usec", 0),
        cpu_system_usec=cpu.get("system_usec", 0),
        cpu_nr_periods=cpu.get("nr_periods", 0),
        cpu_nr_throttled=cpu.get("nr_throttled", 0),
        cpu_throttled_usec=cpu.get("throttled_usec", 0),
        memory_current=_number(files, "memory.current"),
        memory_max=_number(files, "memory.max"),
        memory_peak=_number(files, "memory.peak"),
        oom_events=events.get("oom", 0),
        oom_kills=events.get("oom_kill", 0),
        pids_current=_number(files, "pids.current"),
        pids_max=_number(files, "pids.max"),
        io_read_bytes=sum(d.get("rbytes", 0) for d in io.values()),
        io_write_bytes=sum(d.get("wbytes", 0) for d in io.values()),
    )


def v1_stats(files: Mapping[str, str]) -> CgroupStats:
    """Stats from the texts of a v1 job's files, keyed by file name."""
    cpu = parse_flat_keyed(files.get("cpu.stat", ""))
    ticks = parse_flat_keyed(files.get("cpuacct.stat", ""))
    oom = parse_flat_keyed(files.get("memory.oom_control", ""))
    blkio = parse_blkio_bytes(files.get("blkio.throttle.io_service_bytes_recursive", ""))
    usec_per_tick = 1_000_000 // _USER_HZ
    return CgroupStats(
        cpu_usage_usec=_number(files, "cpuacct.usage") // 1000,
        cpu_user_usec=ticks.get("user", 0) * usec_per_tick,
        cpu_system_usec=ticks.get("system", 0) * usec_per_tick,
        cpu_nr_periods=cpu.get("nr_periods", 0),
        cpu_nr_throttled=cpu.get("nr_throttled", 0),
        cpu_throttled_usec=cpu.get("throttled_time", 0) // 1000,
        memory_current=_number(files, "memory.usage_in_bytes"),
        memory_max=_number(files, "memory.limit_in_bytes"),
        memory_peak=_number(files, "memory.max_usage_in_bytes"),
        # v1 has no OOM event counter; under_oom is a state, so count kills only.
        oom_events=oom.get("oom_kill", 0),
        oom_kills=oom.get("oom_kill", 0),
        pids_current=_number(files, "pids.current"),
        pids_max=_number(files, "pids.max"),
        io_read_bytes=sum(d.get("Read", 0) for d in blkio.values()),
        io_write_bytes=sum(d.get("Write", 0) for d in blkio.values()),
    )


def _number(files: Mapping[str, str], name: str) -> int:
    text = files.get(name)
    return parse_limit(text) if text is not None else 0


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
