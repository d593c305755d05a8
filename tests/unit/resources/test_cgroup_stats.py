"""Parsers of cgroup file formats, on text taken from a real v1 host (Linux 6.18)
and v2 text written from Documentation/admin-guide/cgroup-v2.rst."""

from __future__ import annotations

import pytest

from joblet.resources.stats import (
    Pressure,
    parse_blkio_bytes,
    parse_cpu_list,
    parse_cpu_max,
    parse_flat_keyed,
    parse_io_stat,
    parse_limit,
    parse_nested_keyed,
    parse_psi,
    v1_stats,
    v2_stats,
)

V1_OOM_CONTROL = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"
V1_MEMORY_STAT = (
    "cache 0\nrss 4096\nrss_huge 0\nshmem 0\n"
    "hierarchical_memory_limit 9223372036854771712\ntotal_rss 4096\n"
)
V1_CPU_STAT = (
    "nr_periods 20\nnr_throttled 19\nthrottled_time 952134070\nnr_bursts 0\nburst_time 0\n"
)
V1_CPUACCT_STAT = "user 98\nsystem 3\n"
V1_BLKIO = (
    "254:0 Read 4194304\n254:0 Write 4194304\n254:0 Sync 8388608\n254:0 Async 0\n"
    "254:0 Discard 0\n254:0 Total 8388608\nTotal 8388608\n"
)
PSI = (
    "some avg10=3.28 avg60=0.95 avg300=0.39 total=2494268\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
)
V2_CPU_STAT = (
    "usage_usec 1012345\nuser_usec 1000000\nsystem_usec 12345\n"
    "nr_periods 21\nnr_throttled 20\nthrottled_usec 987654\nnr_bursts 0\nburst_usec 0\n"
)
V2_MEMORY_EVENTS = "low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 1\n"
V2_IO_STAT = (
    "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n"
    "8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n"
)


def test_flat_keyed_reads_v1_oom_control_and_memory_stat() -> None:
    assert parse_flat_keyed(V1_OOM_CONTROL) == {
        "oom_kill_disable": 0,
        "under_oom": 0,
        "oom_kill": 2,
    }
    stat = parse_flat_keyed(V1_MEMORY_STAT)
    assert stat["rss"] == 4096
    assert stat["hierarchical_memory_limit"] == 9223372036854771712


def test_flat_keyed_skips_lines_that_are_not_key_integer() -> None:
    assert parse_flat_keyed("a 1\n\nbroken\nb x\nc -1\n") == {"a": 1, "c": -1}


def test_nested_keyed_and_io_stat() -> None:
    assert parse_nested_keyed("254:0 rbps=1048576 wbps=max riops=max wiops=max\n") == {
        "254:0": {"rbps": "1048576", "wbps": "max", "riops": "max", "wiops": "max"}
    }
    io = parse_io_stat(V2_IO_STAT)
    assert io["8:0"]["rbytes"] == 90430464
    assert io["8:16"]["wbytes"] == 314773504


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max\n", 0), ("-1\n", 0), ("9223372036854771712\n", 0), ("52428800\n", 52428800), ("", 0)],
)
def test_parse_limit(text: str, expected: int) -> None:
    assert parse_limit(text) == expected


def test_parse_cpu_max() -> None:
    assert parse_cpu_max("max 100000\n") == (0, 100000)
    assert parse_cpu_max("50000 100000\n") == (50000, 100000)


def test_parse_blkio_bytes_leaves_out_the_total_line() -> None:
    parsed = parse_blkio_bytes(V1_BLKIO)
    assert parsed == {
        "254:0": {
            "Read": 4194304, "Write": 4194304, "Sync": 8388608,
            "Async": 0, "Discard": 0, "Total": 8388608,
        }
    }  # fmt: skip


def test_parse_psi() -> None:
    psi = parse_psi(PSI)
    assert psi["some"] == Pressure(avg10=3.28, avg60=0.95, avg300=0.39, total_usec=2494268)
    assert psi["full"].total_usec == 0


def test_parse_cpu_list() -> None:
    assert parse_cpu_list("0-2,5\n") == {0, 1, 2, 5}
    assert parse_cpu_list("0\n") == {0}
    assert parse_cpu_list("\n") == frozenset()


def test_v2_stats_builds_every_field() -> None:
    stats = v2_stats(
        {
            "cpu.stat": V2_CPU_STAT,
            "memory.current": "1048576\n",
            "memory.max": "max\n",
            "memory.peak": "2097152\n",
            "memory.events": V2_MEMORY_EVENTS,
            "pids.current": "3\n",
            "pids.max": "1024\n",
            "io.stat": V2_IO_STAT,
        }
    )
    assert (stats.cpu_usage_usec, stats.cpu_user_usec, stats.cpu_system_usec) == (
        1012345, 1000000, 12345,
    )  # fmt: skip
    assert (stats.cpu_nr_periods, stats.cpu_nr_throttled, stats.cpu_throttled_usec) == (
        21, 20, 987654,
    )  # fmt: skip
    assert (stats.memory_current, stats.memory_max, stats.memory_peak) == (1048576, 0, 2097152)
    assert (stats.oom_events, stats.oom_kills) == (1, 1)
    assert (stats.pids_current, stats.pids_max) == (3, 1024)
    assert stats.io_read_bytes == 1459200 + 90430464
    assert stats.io_write_bytes == 314773504 + 299008000


def test_v1_stats_converts_units() -> None:
    stats = v1_stats(
        {
            "cpu.stat": V1_CPU_STAT,
            "cpuacct.usage": "1012345678\n",
            "cpuacct.stat": V1_CPUACCT_STAT,
            "memory.usage_in_bytes": "4096\n",
            "memory.limit_in_bytes": "9223372036854771712\n",
            "memory.max_usage_in_bytes": "8192\n",
            "memory.oom_control": V1_OOM_CONTROL,
            "pids.current": "2\n",
            "pids.max": "max\n",
            "blkio.throttle.io_service_bytes_recursive": V1_BLKIO,
        }
    )
    assert stats.cpu_usage_usec == 1012345  # ns -> us
    assert (stats.cpu_user_usec, stats.cpu_system_usec) == (980000, 30000)  # USER_HZ ticks
    assert (stats.cpu_nr_periods, stats.cpu_nr_throttled) == (20, 19)
    assert stats.cpu_throttled_usec == 952134
    assert (stats.memory_current, stats.memory_max, stats.memory_peak) == (4096, 0, 8192)
    assert stats.oom_kills == 2
    assert (stats.pids_current, stats.pids_max) == (2, 0)
    assert (stats.io_read_bytes, stats.io_write_bytes) == (4194304, 4194304)


def test_missing_files_give_zeros() -> None:
    assert v2_stats({}) == v1_stats({})
    assert v2_stats({}).cpu_usage_usec == 0
