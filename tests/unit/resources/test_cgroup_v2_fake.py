"""The v2 backend's file logic against a fake unified tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from joblet.errors import IsolationError
from joblet.resources.interface import Limits
from joblet.resources.v2 import V2CgroupManager, V2JobCgroup

JOB = "0f0e7c1a-0000-4000-8000-000000000002"
NAME = f"job-{JOB}"
ALL = "cpuset cpu io memory pids\n"


def text(path: Path) -> str:
    return path.read_text()


def prepare(root: Path, *levels: str) -> None:
    """Intermediate groups as the kernel shows them: controllers from the parent."""
    for level in levels:
        (root / level).mkdir(parents=True, exist_ok=True)
        (root / level / "cgroup.controllers").write_text(ALL)


def test_controllers_are_enabled_down_to_the_parent(v2_root: Path) -> None:
    prepare(v2_root, "system", "system/joblet")
    V2CgroupManager(v2_root, "system/joblet").create(JOB, Limits())
    for level in (v2_root, v2_root / "system", v2_root / "system/joblet"):
        assert text(level / "cgroup.subtree_control") == "+cpu +cpuset +memory +io +pids"
    assert (v2_root / "system/joblet" / NAME).is_dir()


def test_only_missing_controllers_are_enabled(v2_root: Path) -> None:
    (v2_root / "cgroup.subtree_control").write_text("cpu memory\n")
    prepare(v2_root, "joblet")
    V2CgroupManager(v2_root, "joblet").create(JOB, Limits())
    assert text(v2_root / "cgroup.subtree_control") == "+cpuset +io +pids"


def test_a_missing_required_controller_is_refused(v2_root: Path) -> None:
    (v2_root / "cgroup.controllers").write_text("cpu memory pids\n")
    with pytest.raises(IsolationError, match="io"):
        V2CgroupManager(v2_root, "joblet").create(JOB, Limits())


def test_every_limit_is_written_exactly(v2_root: Path) -> None:
    prepare(v2_root, "joblet")
    job_dir = v2_root / "joblet" / NAME
    job_dir.mkdir()
    for optional in ("memory.swap.max", "memory.oom.group"):
        (job_dir / optional).write_text("max\n")
    limits = Limits(
        max_cpu_percent=150, cpu_cores="0-1", max_memory_bytes=50 << 20,
        max_io_bps=1 << 20, max_pids=64, io_devices=("254:0",),
    )  # fmt: skip
    job = V2CgroupManager(v2_root, "joblet").create(JOB, limits)
    assert text(job_dir / "cpu.max") == "150000 100000"
    assert text(job_dir / "cpuset.cpus") == "0-1"
    assert not (job_dir / "cpuset.mems").exists()  # empty = the parent's
    assert text(job_dir / "memory.max") == str(50 << 20)
    assert text(job_dir / "memory.swap.max") == "0"
    assert text(job_dir / "memory.oom.group") == "1"
    assert text(job_dir / "io.max") == "254:0 rbps=1048576 wbps=1048576"
    assert text(job_dir / "pids.max") == "64"
    assert job.procs_files() == (job_dir / "cgroup.procs",)


def test_optional_files_are_skipped_where_absent(v2_root: Path) -> None:
    prepare(v2_root, "joblet")
    V2CgroupManager(v2_root, "joblet").create(JOB, Limits(max_memory_bytes=4096))
    job_dir = v2_root / "joblet" / NAME
    assert text(job_dir / "memory.max") == "4096"
    assert not (job_dir / "memory.swap.max").exists()
    assert not (job_dir / "memory.oom.group").exists()


def test_stats_and_oom_from_files(v2_root: Path) -> None:
    prepare(v2_root, "joblet")
    job = V2CgroupManager(v2_root, "joblet").create(JOB, Limits(max_pids=8))
    (job.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert not job.oom_killed()
    (job.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (job.path / "cpu.stat").write_text("usage_usec 500\nuser_usec 400\nsystem_usec 100\n")
    assert job.oom_killed()
    stats = job.read_stats()
    assert (stats.oom_events, stats.oom_kills, stats.cpu_usage_usec) == (1, 1, 500)
    assert stats.pids_max == 8


def test_kill_all_uses_cgroup_kill(v2_root: Path) -> None:
    prepare(v2_root, "joblet")
    job = V2CgroupManager(v2_root, "joblet").create(JOB, Limits())
    (job.path / "cgroup.kill").write_text("")
    job.kill_all()
    assert text(job.path / "cgroup.kill") == "1"
    assert not (job.path / "cgroup.freeze").exists()


def test_kill_all_falls_back_to_freeze_kill_thaw(v2_root: Path) -> None:
    prepare(v2_root, "joblet")
    V2CgroupManager(v2_root, "joblet").create(JOB, Limits())
    job = V2JobCgroup(JOB, v2_root / "joblet" / NAME, kill_timeout_s=0.3)
    (job.path / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    sub = job.path / "sub"
    sub.mkdir()
    (sub / "cgroup.freeze").write_text("1\n")
    victim = subprocess.Popen(["sleep", "30"])
    (sub / "cgroup.procs").write_text(f"{victim.pid}\n")
    assert job.pids() == [victim.pid]
    with pytest.raises(IsolationError, match="survived kill"):
        job.kill_all()  # a fake cgroup.procs never empties
    assert victim.wait(timeout=5) == -9
    assert text(job.path / "cgroup.freeze") == "0"
    assert text(sub / "cgroup.freeze") == "0"


def test_leftovers_open_remove(v2_root: Path) -> None:
    prepare(v2_root, "joblet")
    manager = V2CgroupManager(v2_root, "joblet")
    manager.create(JOB, Limits(max_pids=1))
    assert manager.leftover_job_ids() == [JOB]
    job = manager.open(JOB)
    assert job is not None
    (job.path / "sub").mkdir()
    job.remove()
    assert not job.path.exists()
    assert manager.open(JOB) is None
    assert manager.leftover_job_ids() == []
