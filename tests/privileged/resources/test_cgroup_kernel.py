"""The cgroup backends against the real kernel: limits accepted, processes
contained, killed and removed. Runs on whatever version the host has; the
read-back of limit files is per version and skips on the other one."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cgroup_helpers import pid_gone, spawn_in

from joblet.errors import IsolationError
from joblet.resources import _fs
from joblet.resources.cleanup import cleanup_leftovers, clear_job_group, remove_own
from joblet.resources.detect import create_cgroup_manager
from joblet.resources.devices import block_devices_for
from joblet.resources.interface import CgroupManager, JobCgroup, Limits
from joblet.resources.stats import parse_cpu_list
from joblet.resources.v1 import V1CgroupManager, V1JobCgroup
from joblet.resources.v2 import V2CgroupManager, V2JobCgroup
from joblet.testing.cgroups import favour_cpu, measure_cpu

pytestmark = pytest.mark.privileged
MiB = 1 << 20


def new_id() -> str:
    return str(uuid.uuid4())


def all_limits() -> Limits:
    devices = block_devices_for(Path("/"), Path("/var/tmp"))
    return Limits(
        max_cpu_percent=50,
        cpu_cores="0",
        max_memory_bytes=64 * MiB,
        max_io_bps=MiB if devices else 0,
        max_pids=64,
        io_devices=devices,
    )


def read(path: Path) -> str:
    return path.read_text().strip()


def test_v1_kernel_accepts_every_limit(manager: CgroupManager) -> None:
    if manager.version != "v1":
        pytest.skip(f"host uses cgroup {manager.version}, not v1")
    limits = all_limits()
    job = manager.create(new_id(), limits)
    assert isinstance(job, V1JobCgroup)
    d = job.dirs
    assert read(d["cpu"] / "cpu.cfs_quota_us") == "50000"
    assert read(d["cpu"] / "cpu.cfs_period_us") == "100000"
    assert read(d["cpuset"] / "cpuset.cpus") == "0"
    assert read(d["cpuset"] / "cpuset.mems") == read(d["cpuset"].parent / "cpuset.mems") != ""
    assert read(d["memory"] / "memory.limit_in_bytes") == str(64 * MiB)
    if (d["memory"] / "memory.memsw.limit_in_bytes").exists():
        assert read(d["memory"] / "memory.memsw.limit_in_bytes") == str(64 * MiB)
    assert read(d["pids"] / "pids.max") == "64"
    for dev in limits.io_devices:
        for name in ("read_bps_device", "write_bps_device"):
            lines = read(d["blkio"] / f"blkio.throttle.{name}").splitlines()
            assert f"{dev} {MiB}" in lines


def test_v2_kernel_accepts_every_limit(manager: CgroupManager) -> None:
    if manager.version != "v2":
        pytest.skip(f"host uses cgroup {manager.version}, not pure v2")
    limits = all_limits()
    job = manager.create(new_id(), limits)
    assert isinstance(job, V2JobCgroup)
    assert read(job.path / "cpu.max") == "50000 100000"
    assert read(job.path / "cpuset.cpus") == "0"
    assert read(job.path / "memory.max") == str(64 * MiB)
    if (job.path / "memory.swap.max").exists():
        assert read(job.path / "memory.swap.max") == "0"
    assert read(job.path / "pids.max") == "64"
    io_max = read(job.path / "io.max").splitlines()
    for dev in limits.io_devices:
        assert any(line.startswith(f"{dev} rbps={MiB} wbps={MiB}") for line in io_max)
    parent = job.path.parent
    assert {"cpu", "memory", "io", "pids"} <= set(read(parent / "cgroup.subtree_control").split())


def test_pids_lists_a_joined_process(manager: CgroupManager) -> None:
    job = manager.create(new_id(), Limits())
    proc = subprocess.Popen(["sleep", "30"])
    try:
        for procs in job.procs_files():
            procs.write_text(str(proc.pid))
        assert job.pids() == [proc.pid]
    finally:
        job.kill_all()
    assert proc.wait(timeout=5) == -9
    assert job.pids() == []


def test_kill_all_reaches_double_forked_setsid_processes(manager: CgroupManager) -> None:
    job = manager.create(new_id(), Limits())
    spawn_in(job, "sh", "-c", 'setsid sh -c "sleep 100 & sleep 100" &').wait(timeout=5)
    assert _fs.wait_for(lambda: len(job.pids()) >= 2, 5.0), job.pids()
    survivors = job.pids()
    job.kill_all()
    assert job.pids() == []
    assert _fs.wait_for(lambda: all(pid_gone(p) for p in survivors), 5.0)


def freeze_subgroup(job: JobCgroup, pid: int) -> Path:
    """Move `pid` into a sub-cgroup and freeze it, as a hostile job could."""
    if isinstance(job, V1JobCgroup):
        sub = job.dirs["freezer"] / "sub"
        sub.mkdir()
        (sub / "cgroup.procs").write_text(str(pid))
        (sub / "freezer.state").write_text("FROZEN")
        assert _fs.wait_for(lambda: read(sub / "freezer.state") == "FROZEN", 5.0)
        return sub
    assert isinstance(job, V2JobCgroup)
    sub = job.path / "sub"
    sub.mkdir()
    (sub / "cgroup.procs").write_text(str(pid))
    (sub / "cgroup.freeze").write_text("1")
    assert _fs.wait_for(lambda: "frozen 1" in read(sub / "cgroup.events"), 5.0)
    return sub


def test_kill_all_reaches_a_frozen_subgroup_and_remove_leaves_nothing(
    manager: CgroupManager,
) -> None:
    job = manager.create(new_id(), Limits(max_pids=32))
    proc = spawn_in(job, "sleep", "100")
    assert _fs.wait_for(lambda: job.pids() == [proc.pid], 5.0)
    sub = freeze_subgroup(job, proc.pid)
    job.kill_all()
    assert proc.wait(timeout=5) == -9
    job.remove()
    assert not sub.exists()
    groups = list(job.dirs.values()) if isinstance(job, V1JobCgroup) else [sub.parent]
    assert not any(g.exists() for g in groups)
    assert manager.open(job.job_id) is None
    assert manager.leftover_job_ids() == []


def test_cpu_percent_limits_cpu_time(manager: CgroupManager) -> None:
    job = manager.create(new_id(), Limits(max_cpu_percent=50))
    for procs in job.procs_files():  # the host's other work must not hold it under its limit
        favour_cpu(procs.parent)
    busy = spawn_in(job, sys.executable, "-S", "-c", "while True: pass")
    try:
        # Past the first period, which may start with a full quota.
        assert _fs.wait_for(lambda: job.read_stats().cpu_usage_usec > 300_000, 30.0)
        rate, throttled = measure_cpu(job, cpu_seconds=1.5, timeout=30)
    finally:
        busy.kill()
        busy.wait()
    assert 0.4 <= rate <= 0.6, f"{rate:.3f} CPU-s/s"
    assert throttled > 0


def test_cpu_cores_pins_the_job(manager: CgroupManager) -> None:
    job = manager.create(new_id(), Limits(cpu_cores="0"))
    out = spawn_in(job, "cat", "/proc/self/status", stdout=subprocess.PIPE).communicate(timeout=5)
    line = next(x for x in out[0].decode().splitlines() if x.startswith("Cpus_allowed_list:"))
    assert parse_cpu_list(line.split(":")[1]) == {0}


def test_memory_limit_oom_kills_and_is_reported(manager: CgroupManager) -> None:
    job = manager.create(new_id(), Limits(max_memory_bytes=50 * MiB))
    assert not job.oom_killed()
    hog = spawn_in(job, sys.executable, "-S", "-c", "data = b'x' * (200 << 20)")
    assert hog.wait(timeout=30) == -9
    assert job.oom_killed()
    assert job.read_stats().oom_kills >= 1
    assert job.read_stats().memory_max == 50 * MiB


FORKER = """
import os, time
n = 0
for _ in range(200):
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
    except OSError:
        break
    n += 1
print(n, flush=True)
"""


def test_pids_limit_bounds_a_fork_loop(manager: CgroupManager) -> None:
    job = manager.create(new_id(), Limits(max_pids=16))
    proc = spawn_in(job, sys.executable, "-S", "-c", FORKER, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        # readline, not communicate: the forked children hold the pipe open.
        forked = int(proc.stdout.readline())
        assert forked == 15  # the forker itself holds the 16th pid
        stats = job.read_stats()
        assert stats.pids_max == 16
        assert stats.pids_current <= 16
    finally:
        job.kill_all()
        proc.stdout.close()
        proc.wait(timeout=5)
    assert job.pids() == []


def layout_parent(manager: CgroupManager) -> str:
    if isinstance(manager, V1CgroupManager):
        return next(iter(manager.parent_dirs.values())).name
    assert isinstance(manager, V2CgroupManager)
    return manager.parent_dir.name


def test_leftovers_are_found_and_cleaned_by_a_new_manager(manager: CgroupManager) -> None:
    ids = sorted([new_id(), new_id()])
    jobs = [manager.create(i, Limits(max_pids=8)) for i in ids]
    # Orphaned sleeps: init reaps them once killed, and a cgroup holding an
    # unreaped zombie cannot be removed.
    for job in jobs:
        spawn_in(job, "sh", "-c", "sleep 100 &").wait(timeout=5)
    sleepers = [p for j in jobs for p in j.pids()]
    assert len(sleepers) == 2
    parent = layout_parent(manager)
    restarted = create_cgroup_manager(Path("/sys/fs/cgroup"), parent)
    assert restarted.leftover_job_ids() == ids
    assert restarted.open(ids[0]) is not None
    assert cleanup_leftovers(restarted) == ids
    assert _fs.wait_for(lambda: all(pid_gone(p) for p in sleepers), 5.0)
    assert restarted.leftover_job_ids() == []
    assert restarted.open(ids[0]) is None


def test_a_job_run_again_under_its_id_first_clears_what_an_unrecorded_run_left(
    manager: CgroupManager,
) -> None:
    """A placed job claimed again by a node whose record of an earlier run
    of it was lost (a crash before the state helper stored it): that run's
    group, with a process still in it, would be the new run's group too."""
    job_id = new_id()
    earlier = manager.create(job_id, Limits())
    sleeper = spawn_in(earlier, "sleep", "60")
    try:
        assert _fs.wait_for(lambda: sleeper.pid in earlier.pids(), 5.0)
        assert clear_job_group(manager, job_id)
        assert job_id not in manager.leftover_job_ids()
        sleeper.wait(timeout=5)
        again = manager.create(job_id, Limits())
        assert again.pids() == []
        again.remove()
        assert not clear_job_group(manager, job_id)  # nothing left: nothing done
    finally:
        sleeper.kill()
        sleeper.wait()


def parent_groups(manager: CgroupManager) -> list[Path]:
    if isinstance(manager, V1CgroupManager):
        return sorted(set(manager.parent_dirs.values()))
    assert isinstance(manager, V2CgroupManager)
    return [manager.parent_dir]


def test_remove_parent_never_kills_and_remove_own_spares_foreign_groups(
    manager: CgroupManager,
) -> None:
    own, other, foreign = new_id(), new_id(), new_id()
    groups = {i: manager.create(i, Limits(max_pids=8)) for i in (own, other, foreign)}
    # Orphaned sleeps: init reaps them once killed (see the test above).
    orphan = "sleep 100 >/dev/null 2>&1 & echo $!"
    sleepers = {}
    for job_id in (own, foreign):
        started = spawn_in(groups[job_id], "sh", "-c", orphan, stdout=subprocess.PIPE)
        sleepers[job_id] = int(started.communicate(timeout=5)[0])
    with pytest.raises(IsolationError, match="still busy"):
        manager.remove_parent()
    assert not any(pid_gone(p) for p in sleepers.values())

    removal = remove_own(manager, lambda job_id: job_id != foreign)
    # The refused remove_parent may already have taken the empty group `other`
    # (it removes bottom-up until a busy group stops it, in directory order).
    assert own in removal.removed and set(removal.removed) <= {own, other}
    assert removal.foreign == [foreign]
    assert _fs.wait_for(lambda: pid_gone(sleepers[own]), 5.0)
    assert not pid_gone(sleepers[foreign])  # another root's job: untouched
    assert manager.leftover_job_ids() == [foreign]
    assert all(p.is_dir() for p in parent_groups(manager))

    assert remove_own(manager, lambda job_id: True).removed == [foreign]
    assert _fs.wait_for(lambda: pid_gone(sleepers[foreign]), 5.0)
    assert not any(p.exists() for p in parent_groups(manager))
    manager.remove_parent()  # nothing left: a no-op


def test_remove_if_empty_leaves_a_group_with_a_process_and_removes_an_empty_one(
    manager: CgroupManager,
) -> None:
    busy = manager.create(new_id(), Limits(max_pids=32))
    proc = spawn_in(busy, "sleep", "100")
    try:
        assert _fs.wait_for(lambda: busy.pids() == [proc.pid], 5.0)
        assert busy.remove_if_empty() is False
        assert busy.pids() == [proc.pid]  # nothing of it was removed or killed
        assert manager.open(busy.job_id) is not None
    finally:
        busy.kill_all()
        busy.remove()
    assert proc.wait(timeout=5) == -9
    empty = manager.create(new_id(), Limits(max_pids=32))
    assert empty.remove_if_empty() is True
    assert manager.open(empty.job_id) is None
    assert manager.leftover_job_ids() == []


def test_a_parent_removed_behind_the_managers_back_is_made_again(manager: CgroupManager) -> None:
    manager.create(new_id(), Limits()).remove()
    manager.remove_parent()
    job = manager.create(new_id(), Limits(max_pids=32))
    proc = spawn_in(job, "true")
    assert proc.wait(timeout=5) == 0  # the job's groups took it (cpuset filled in)
    job.remove()


def test_v1_a_parent_cpuset_narrowed_since_it_was_read_is_read_again(
    manager: CgroupManager,
) -> None:
    """The parent's cpuset is read once; CPUs taken from it later (hotplug,
    an operator) would make every job's copy invalid: the next job's start
    reads it again instead of failing."""
    if not isinstance(manager, V1CgroupManager):
        pytest.skip(f"host uses cgroup {manager.version}, not v1")
    first = manager.create(new_id(), Limits())
    assert isinstance(first, V1JobCgroup)
    parent = first.dirs["cpuset"].parent
    cpus = parse_cpu_list(read(parent / "cpuset.cpus"))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs in the parent's cpuset")
    first.remove()
    (parent / "cpuset.cpus").write_text(str(min(cpus)))
    job = manager.create(new_id(), Limits())
    assert isinstance(job, V1JobCgroup)
    assert read(job.dirs["cpuset"] / "cpuset.cpus") == str(min(cpus))
    job.remove()
