# ruff: noqa: E501  (verbatim kernel samples / JSON, one line each)
"""The sampler's pure parsers and snapshot builders, on real v1 files copied
from a Debian 12 host (kernel 6.x, cgroup v1 hybrid) and v2 files written per
Documentation/admin-guide/cgroup-v2.rst."""

from __future__ import annotations

from joblet.metrics.parsers import (
    parse_max_open_files,
    parse_net_dev,
    parse_proc_stat,
    parse_proc_status,
    state_counts,
)
from joblet.metrics.snapshot import DeviceIO, v1_reading, v2_reading

V1_FILES = {
    "cpu.stat": "nr_periods 120\nnr_throttled 57\nthrottled_time 2851234567\nnr_bursts 0\nburst_time 0\n",
    "cpuacct.stat": "user 32790\nsystem 6986\n",
    "cpuacct.usage": "397766338599\n",
    "memory.usage_in_bytes": "212336640\n",
    "memory.limit_in_bytes": "9223372036854771712\n",
    "memory.kmem.tcp.usage_in_bytes": "8192\n",
    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    "memory.stat": (
        "cache 0\nrss 0\nrss_huge 0\nshmem 0\nmapped_file 0\ndirty 0\nwriteback 0\n"
        "pgfault 0\npgmajfault 0\nhierarchical_memory_limit 9223372036854771712\n"
        "total_cache 1268199424\ntotal_rss 285409280\ntotal_rss_huge 0\ntotal_shmem 4096\n"
        "total_mapped_file 42889216\ntotal_dirty 92336128\ntotal_writeback 12288\n"
        "total_pgfault 8357368\ntotal_pgmajfault 668\n"
    ),
    "pids.current": "3\n",
    "pids.max": "max\n",
    "pids.events": "max 4\n",
    "blkio.throttle.io_service_bytes_recursive": (
        "254:0 Read 365641728\n254:0 Write 287395840\n254:0 Sync 647499776\n"
        "254:0 Async 221446144\n254:0 Discard 215908352\n254:0 Total 868945920\n"
        "Total 868945920\n"
    ),
    "blkio.throttle.io_serviced_recursive": (
        "254:0 Read 20575\n254:0 Write 61163\n254:0 Sync 84788\n254:0 Async 42751\n"
        "254:0 Discard 45801\n254:0 Total 127539\nTotal 127539\n"
    ),
}

V2_FILES = {
    "cpu.stat": (
        "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
        "nr_periods 30\nnr_throttled 12\nthrottled_usec 600000\n"
    ),
    "memory.current": "209715200\n",
    "memory.max": "536870912\n",
    "memory.stat": (
        "anon 204800000\nfile 4096000\nkernel_stack 65536\nslab 1048576\nsock 0\n"
        "shmem 8192\nfile_mapped 4096\nfile_dirty 12288\nfile_writeback 0\n"
        "pgfault 51234\npgmajfault 7\n"
    ),
    "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    "io.stat": (
        "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n"
        "8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n"
    ),
    "pids.current": "2\n",
    "pids.max": "64\n",
    "pids.events": "max 0\n",
    "cpu.pressure": "some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\nfull avg10=0.50 avg60=0.10 avg300=0.00 total=2345\n",
    "memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
}

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 18303197   68291    0    0    0     0          0         0 18303197   68291    0    0    0     0       0          0
  eth0: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0
"""


def test_v1_reading_from_real_files() -> None:
    r = v1_reading(V1_FILES)
    assert r.cpu == {
        "usageUsec": 397766338,
        "userUsec": 327900000,
        "systemUsec": 69860000,
        "nrPeriods": 120,
        "nrThrottled": 57,
        "throttledUsec": 2851234,
    }
    m = r.memory
    assert m["current"] == 212336640 and m["max"] == 0  # LONG_MAX page-rounded: unlimited
    assert (m["anon"], m["file"], m["shmem"]) == (285409280, 1268199424, 4096)
    assert (m["fileMapped"], m["fileDirty"], m["fileWriteback"]) == (42889216, 92336128, 12288)
    assert (m["pgFault"], m["pgMajFault"], m["sock"]) == (8357368, 668, 8192)
    assert m["oomKill"] == 2 and "kernelStack" not in m and "slab" not in m
    assert r.io == {"254:0": DeviceIO(365641728, 287395840, 20575, 61163, 215908352, 45801)}
    assert (r.pids_current, r.pids_max, r.pids_events) == (3, 0, 4)
    assert r.pressure == {}  # v1 has no PSI files


def test_v2_reading_per_kernel_docs() -> None:
    r = v2_reading(V2_FILES)
    assert r.cpu["usageUsec"] == 2500000 and r.cpu["throttledUsec"] == 600000
    m = r.memory
    assert (m["current"], m["max"], m["anon"], m["kernelStack"], m["slab"]) == (
        209715200, 536870912, 204800000, 65536, 1048576,
    )  # fmt: skip
    assert (m["oomEvents"], m["oomKill"], m["pgMajFault"]) == (1, 1, 7)
    assert r.io["8:0"] == DeviceIO(90430464, 299008000, 8950, 1252, 50331648, 3021)
    assert r.io["8:16"].write_bytes == 314773504
    assert (r.pids_current, r.pids_max) == (2, 64)
    assert r.pressure["cpu"]["some"].avg10 == 1.5 and r.pressure["cpu"]["full"].avg60 == 0.1
    assert "io" not in r.pressure  # a file the kernel did not offer


def test_missing_files_give_zero_not_errors() -> None:
    for reading in (v1_reading({}), v2_reading({})):
        assert all(v == 0 for v in reading.cpu.values())
        assert reading.memory["current"] == 0 and reading.io == {}


def test_net_dev() -> None:
    parsed = parse_net_dev(NET_DEV)
    assert parsed["lo"].rx_bytes == parsed["lo"].tx_bytes == 18303197
    eth = parsed["eth0"]
    assert (eth.rx_bytes, eth.rx_packets, eth.rx_errors, eth.rx_dropped) == (1000, 10, 1, 2)
    assert (eth.tx_bytes, eth.tx_packets, eth.tx_errors, eth.tx_dropped) == (2000, 20, 3, 4)


def test_proc_stat_state_and_threads_after_a_tricky_name() -> None:
    # The name may hold spaces and parentheses: fields start after the last ')'.
    fields = "S 1 7 7 0 -1 4194560 900 0 0 0 12 3 0 0 20 0 6 0 100 4096 200"
    assert parse_proc_stat(f"7 (a) b (c) {fields}\n") == parse_proc_stat(f"7 (x) {fields}\n")
    status = parse_proc_stat(f"7 (a) b (c) {fields}\n")
    assert (status.state, status.threads) == ("S", 6)
    assert (parse_proc_stat("").state, parse_proc_stat("7 (x) R 1").threads) == ("", 0)


def test_proc_status_limits_and_states() -> None:
    status = parse_proc_status("Name:\tpython3\nState:\tS (sleeping)\nTgid:\t7\nThreads:\t4\n")
    assert (status.state, status.threads) == ("S", 4)
    limits = (
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max open files            1024                 524288               files\n"
    )
    assert parse_max_open_files(limits) == 1024
    assert parse_max_open_files("Max open files unlimited unlimited files\n") == 0
    assert state_counts(["R", "S", "D", "Z", "T", "I", "?"]) == {
        "running": 1, "sleeping": 3, "stopped": 1, "zombie": 1,
    }  # fmt: skip
