from __future__ import annotations

import pytest

from joblet.errors import IsolationError
from joblet.resources.cleanup import cleanup_leftovers
from joblet.resources.interface import CgroupStats, Limits
from joblet.resources.null import NullCgroupManager


def test_runs_jobs_without_limits() -> None:
    manager = NullCgroupManager()
    job = manager.create("j1", Limits(io_devices=("8:0",)))
    assert manager.version == "none"
    assert job.procs_files() == ()
    assert job.pids() == []
    assert job.read_stats() == CgroupStats()
    assert not job.oom_killed()
    job.kill_all()
    job.remove()
    assert manager.leftover_job_ids() == []
    assert manager.open("j1") is None
    assert cleanup_leftovers(manager) == []


@pytest.mark.parametrize(
    "limits",
    [
        Limits(max_cpu_percent=10),
        Limits(cpu_cores="0"),
        Limits(max_memory_bytes=1),
        Limits(max_io_bps=1, io_devices=("8:0",)),
        Limits(max_pids=1024),
    ],
)
def test_refuses_any_limit_loudly(limits: Limits) -> None:
    with pytest.raises(IsolationError, match="no cgroup2 here"):
        NullCgroupManager("no cgroup2 here").create("j1", limits)
