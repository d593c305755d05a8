"""The v1 backend's file logic against a fake per-controller tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from joblet.errors import InvalidArgument, IsolationError
from joblet.resources.interface import Limits
from joblet.resources.v1 import V1CgroupManager, V1JobCgroup

JOB = "0f0e7c1a-0000-4000-8000-000000000001"
NAME = f"job-{JOB}"


def mounts(root: Path, comount: bool = False) -> dict[str, Path]:
    found = {
        c: root / c for c in ("cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "freezer")
    }
    if comount:
        both = root / "cpu,cpuacct"
        both.mkdir()
        found["cpu"] = found["cpuacct"] = both
    return found


def text(path: Path) -> str:
    return path.read_text()


def test_every_limit_is_written_exactly(v1_root: Path) -> None:
    manager = V1CgroupManager(mounts(v1_root), "joblet")
    limits = Limits(
        max_cpu_percent=50, cpu_cores="1", max_memory_bytes=64 << 20,
        max_io_bps=1 << 20, max_pids=64, io_devices=("254:0",),
    )  # fmt: skip
    job = manager.create(JOB, limits)
    assert text(v1_root / "cpuset/joblet" / NAME / "cpuset.cpus") == "1"
    assert text(v1_root / "cpuset/joblet" / NAME / "cpuset.mems") == "0"
    assert text(v1_root / "cpu/joblet" / NAME / "cpu.cfs_period_us") == "100000"
    assert text(v1_root / "cpu/joblet" / NAME / "cpu.cfs_quota_us") == "50000"
    assert text(v1_root / "memory/joblet" / NAME / "memory.limit_in_bytes") == str(64 << 20)
    assert not (v1_root / "memory/joblet" / NAME / "memory.memsw.limit_in_bytes").exists()
    blkio = v1_root / "blkio/joblet" / NAME
    assert text(blkio / "blkio.throttle.read_bps_device") == "254:0 1048576"
    assert text(blkio / "blkio.throttle.write_bps_device") == "254:0 1048576"
    assert text(v1_root / "pids/joblet" / NAME / "pids.max") == "64"
    assert not (v1_root / "freezer/joblet" / NAME / "freezer.state").exists()
    assert isinstance(job, V1JobCgroup)


def test_memsw_is_set_where_the_kernel_offers_it(v1_root: Path) -> None:
    job_dir = v1_root / "memory/joblet" / NAME
    job_dir.mkdir(parents=True)
    (job_dir / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    V1CgroupManager(mounts(v1_root), "joblet").create(JOB, Limits(max_memory_bytes=4096))
    assert text(job_dir / "memory.memsw.limit_in_bytes") == "4096"


def test_cpuset_is_copied_down_every_level(v1_root: Path) -> None:
    V1CgroupManager(mounts(v1_root), "system/joblet").create(JOB, Limits())
    for level in ("cpuset/system", "cpuset/system/joblet", f"cpuset/system/joblet/{NAME}"):
        assert text(v1_root / level / "cpuset.cpus") == "0-1", level
        assert text(v1_root / level / "cpuset.mems") == "0", level


def test_cpuset_copy_keeps_a_parent_already_set(v1_root: Path) -> None:
    parent = v1_root / "cpuset/joblet"
    parent.mkdir()
    (parent / "cpuset.cpus").write_text("1\n")
    V1CgroupManager(mounts(v1_root), "joblet").create(JOB, Limits())
    assert text(parent / "cpuset.cpus") == "1\n"
    assert text(parent / NAME / "cpuset.cpus") == "1"
    assert text(parent / "cpuset.mems") == "0"


def test_comounted_cpu_cpuacct_share_one_group(v1_root: Path) -> None:
    job = V1CgroupManager(mounts(v1_root, comount=True), "joblet").create(
        JOB, Limits(max_cpu_percent=200)
    )
    both = v1_root / "cpu,cpuacct/joblet" / NAME
    assert text(both / "cpu.cfs_quota_us") == "200000"
    assert len(job.procs_files()) == 6
    assert both / "cgroup.procs" in job.procs_files()


def test_procs_files_one_per_hierarchy(v1_root: Path) -> None:
    job = V1CgroupManager(mounts(v1_root), "joblet").create(JOB, Limits())
    assert sorted(job.procs_files()) == sorted(
        v1_root / c / "joblet" / NAME / "cgroup.procs"
        for c in ("cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "freezer")
    )


def test_leftovers_open_and_remove(v1_root: Path) -> None:
    manager = V1CgroupManager(mounts(v1_root), "joblet")
    manager.create(JOB, Limits(max_pids=5))
    (v1_root / "pids/joblet/job-other").mkdir()  # only in one hierarchy
    (v1_root / "pids/joblet/not-a-job").mkdir()
    assert manager.leftover_job_ids() == [JOB, "other"]
    job = manager.open(JOB)
    assert job is not None
    assert job.pids() == []
    job.kill_all()  # empty: nothing to do
    job.remove()
    assert not any((v1_root / c / "joblet" / NAME).exists() for c in ("cpu", "pids", "cpuset"))
    assert manager.open(JOB) is None
    assert manager.leftover_job_ids() == ["other"]


def test_oom_killed_reads_oom_control(v1_root: Path) -> None:
    job = V1CgroupManager(mounts(v1_root), "joblet").create(JOB, Limits())
    oom = v1_root / "memory/joblet" / NAME / "memory.oom_control"
    oom.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not job.oom_killed()
    oom.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert job.oom_killed()
    assert job.read_stats().oom_kills == 1


def test_kill_all_freezes_kills_thaws_every_group_and_reports_survivors(v1_root: Path) -> None:
    manager = V1CgroupManager(mounts(v1_root), "joblet")
    manager.create(JOB, Limits())
    job = V1JobCgroup(JOB, manager.open(JOB).dirs, kill_timeout_s=0.3)  # type: ignore[union-attr]
    freezer = job.dirs["freezer"]
    sub = freezer / "sub"
    sub.mkdir()
    (sub / "freezer.state").write_text("FROZEN\n")
    victim = subprocess.Popen(["sleep", "30"])
    # A fake cgroup.procs never empties, so the loop must end in an error.
    (sub / "cgroup.procs").write_text(f"{victim.pid}\n")
    with pytest.raises(IsolationError, match="survived kill"):
        job.kill_all()
    assert victim.wait(timeout=5) == -9
    assert text(freezer / "freezer.state") == "THAWED"
    assert text(sub / "freezer.state") == "THAWED"


def test_failed_write_becomes_isolation_error_and_nothing_is_left(v1_root: Path) -> None:
    blocker = v1_root / "pids/joblet" / NAME / "pids.max"
    blocker.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(IsolationError, match=r"pids\.max"):
        V1CgroupManager(mounts(v1_root), "joblet").create(JOB, Limits(max_pids=3))
    assert not (v1_root / "cpu/joblet" / NAME).exists()


def test_io_limit_without_devices_creates_nothing(v1_root: Path) -> None:
    with pytest.raises(IsolationError):
        V1CgroupManager(mounts(v1_root), "joblet").create(JOB, Limits(max_io_bps=1))
    assert not (v1_root / "cpu/joblet" / NAME).exists()


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ""])
def test_unsafe_job_ids_are_rejected(v1_root: Path, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        V1CgroupManager(mounts(v1_root), "joblet").create(bad, Limits())


def test_missing_controller_is_refused(v1_root: Path) -> None:
    partial = mounts(v1_root)
    del partial["freezer"]
    with pytest.raises(IsolationError, match="freezer"):
        V1CgroupManager(partial, "joblet")
