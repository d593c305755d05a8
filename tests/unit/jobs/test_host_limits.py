"""Process-id headroom (pure) and the readings it is fed, on a fake /proc."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from joblet.errors import ResourceExhausted
from joblet.jobs import host_limits
from joblet.jobs.host_limits import PidLimits, pid_problem


def fake_proc(tmp_path: Path, pid_max: int, threads_max: int, tasks: int) -> Path:
    kernel = tmp_path / "sys" / "kernel"
    kernel.mkdir(parents=True)
    (kernel / "pid_max").write_text(f"{pid_max}\n")
    (kernel / "threads-max").write_text(f"{threads_max}\n")
    (tmp_path / "loadavg").write_text(f"0.52 0.58 0.59 3/{tasks} 4242\n")
    return tmp_path


def test_enough_free_ids_is_no_problem() -> None:
    assert pid_problem(1_000, PidLimits(32_768, 100_000), 256) is None
    assert pid_problem(32_768, PidLimits(32_768, 100_000), 0) is None  # check off


def test_the_lower_of_the_two_limits_is_named() -> None:
    problem = pid_problem(32_600, PidLimits(32_768, 100_000), 256)
    assert problem is not None
    assert "168 process ids free" in problem and "kernel.pid_max 32768" in problem
    problem = pid_problem(9_900, PidLimits(4_194_304, 10_000), 256)
    assert problem is not None and "kernel.threads-max 10000" in problem


def test_over_the_limit_counts_as_none_free() -> None:
    problem = pid_problem(40_000, PidLimits(32_768, 100_000), 256)
    assert problem is not None and "has 0 process ids free" in problem


def test_readings_from_proc(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, 32_768, 190_000, 32_700)
    limits = host_limits.read_pid_limits(proc)
    assert limits == PidLimits(32_768, 190_000)
    assert host_limits.tasks_in_use(proc) == 32_700
    with pytest.raises(ResourceExhausted, match="68 process ids free"):
        host_limits.check_pids(limits, 256, proc)
    host_limits.check_pids(limits, 60, proc)


def test_the_open_files_soft_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 64:
        pytest.skip(f"hard open-files limit {hard}: nothing to raise to")
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        done = host_limits.raise_open_files_limit()
        assert done is not None and f"from 64 to {hard}" in done
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
        assert host_limits.raise_open_files_limit() is None
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_every_reading_is_current(tmp_path: Path) -> None:
    # The file stays open between readings: each one still reads it anew.
    proc = fake_proc(tmp_path, 32_768, 190_000, 500)
    assert host_limits.tasks_in_use(proc) == 500
    (proc / "loadavg").write_text("0.52 0.58 0.59 3/32700 4242\n")
    assert host_limits.tasks_in_use(proc) == 32_700
    assert host_limits.tasks_in_use(Path("/proc")) > 0  # the host's own
