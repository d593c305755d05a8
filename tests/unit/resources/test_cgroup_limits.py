from __future__ import annotations

import pytest

from joblet.errors import IsolationError
from joblet.resources.interface import Limits
from joblet.resources.limits import (
    LimitWrite,
    cpu_quota_usec,
    has_limits,
    v1_counting_writes,
    v1_limit_writes,
    v2_limit_writes,
)


@pytest.mark.parametrize(
    ("percent", "quota"), [(100, 100_000), (50, 50_000), (250, 250_000), (1, 1_000)]
)
def test_cpu_quota_is_percent_of_one_core_per_period(percent: int, quota: int) -> None:
    assert cpu_quota_usec(percent) == quota


def test_v1_sets_cpuset_first_even_without_limits() -> None:
    assert v1_limit_writes(Limits(), "0-1", "0") == (
        LimitWrite("cpuset", "cpuset.cpus", "0-1"),
        LimitWrite("cpuset", "cpuset.mems", "0"),
    )


def test_v1_memory_limit_precedes_memsw() -> None:
    names = [w.filename for w in v1_limit_writes(Limits(max_memory_bytes=4096), "0", "0")]
    assert names.index("memory.limit_in_bytes") < names.index("memory.memsw.limit_in_bytes")


def test_v1_io_limit_per_device_read_and_write() -> None:
    writes = v1_limit_writes(Limits(max_io_bps=10, io_devices=("8:0", "254:0")), "0", "0")
    assert [(w.filename, w.value) for w in writes if w.controller == "blkio"] == [
        ("blkio.throttle.read_bps_device", "8:0 10"),
        ("blkio.throttle.write_bps_device", "8:0 10"),
        ("blkio.throttle.read_bps_device", "254:0 10"),
        ("blkio.throttle.write_bps_device", "254:0 10"),
    ]


def test_v1_devices_without_io_limit_get_a_rule_that_only_counts() -> None:
    # Without a rule a recent kernel leaves blkio.throttle.* at 0 for the group.
    writes = v1_counting_writes(Limits(io_devices=("254:0",)))
    assert [(w.controller, w.filename, w.value) for w in writes] == [
        ("blkio", "blkio.throttle.read_bps_device", f"254:0 {2**64 - 2}"),
        ("blkio", "blkio.throttle.write_bps_device", f"254:0 {2**64 - 2}"),
    ]
    assert v1_counting_writes(Limits(max_io_bps=10, io_devices=("254:0",))) == ()
    assert not [
        w for w in v1_limit_writes(Limits(io_devices=("8:0",)), "0", "0") if w.controller == "blkio"
    ]


def test_v2_writes_nothing_but_oom_group_without_limits() -> None:
    assert v2_limit_writes(Limits()) == (
        LimitWrite("memory", "memory.oom.group", "1", required=False),
    )


def test_io_limit_without_device_is_refused() -> None:
    with pytest.raises(IsolationError, match="block device"):
        v2_limit_writes(Limits(max_io_bps=1))
    with pytest.raises(IsolationError, match="block device"):
        v1_limit_writes(Limits(max_io_bps=1), "0", "0")


def test_has_limits() -> None:
    assert not has_limits(Limits(io_devices=("8:0",)))
    assert has_limits(Limits(cpu_cores="0"))
    assert has_limits(Limits(max_pids=1))
