"""Defaults sized from the host's RAM: a parser of /proc/meminfo and the
fractions, pure apart from `read_mem_total`.

A job asks for no memory limit most of the time; on a swapless host one such
job took 1.5 GB and the host's other services with it. `joblet setup` writes
a quarter of RAM as the jobs' default limit, and memory volumes (tmpfs, not
counted against any job) are capped at half of it.
"""

from __future__ import annotations

MIB = 1024 * 1024
JOB_MEMORY_FRACTION = 4  # a job without a limit gets 1/4 of RAM
MEMORY_VOLUME_FRACTION = 2  # a memory volume holds at most 1/2 of RAM
MIN_JOB_MEMORY_MB = 64


def mem_total_bytes(meminfo: str) -> int:
    """MemTotal of a /proc/meminfo text (proc(5): "MemTotal:  16318480 kB")."""
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        if name == "MemTotal":
            value, _, unit = rest.strip().partition(" ")
            return int(value) * (1024 if unit.strip() == "kB" else 1)
    raise ValueError("no MemTotal in /proc/meminfo")


def read_mem_total(procfs: str = "/proc") -> int:
    with open(f"{procfs}/meminfo") as f:
        return mem_total_bytes(f.read())


def default_job_memory_mb(mem_total: int) -> int:
    return max(MIN_JOB_MEMORY_MB, mem_total // JOB_MEMORY_FRACTION // MIB)


def memory_volume_cap(mem_total: int) -> int:
    return mem_total // MEMORY_VOLUME_FRACTION // MIB * MIB
