"""The v2 backend's controller-free half against a real cgroup2 mount.

Membership, cpu.stat accounting, cgroup.kill, the freezer fallback and removal
are core cgroup2 features, present even when every controller is bound to v1
(a hybrid host's `unified` mount). So the v2 job group is exercised on the
real kernel on any host with a cgroup2 mount; the limit files need the
controllers and are covered by test_cgroup_kernel.py on pure v2 hosts.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cgroup_helpers import pid_gone, spawn_in

from joblet.errors import IsolationError
from joblet.resources import _fs
from joblet.resources.detect import find_v2_mount, parse_mountinfo
from joblet.resources.interface import Limits
from joblet.resources.v2 import V2CgroupManager, V2JobCgroup

pytestmark = pytest.mark.privileged


@pytest.fixture(scope="module")
def v2_mount() -> Path:
    mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    found = find_v2_mount(mounts, Path("/sys/fs/cgroup"))
    if found is None:
        pytest.skip("no cgroup2 filesystem mounted under /sys/fs/cgroup")
    return found


@pytest.fixture
def scratch(v2_mount: Path) -> Iterator[Path]:
    """A parent group of our own on the cgroup2 mount, emptied and removed after."""
    parent = v2_mount / f"joblet-v2core-{uuid.uuid4().hex[:8]}"
    parent.mkdir()
    try:
        yield parent
    finally:
        for group in reversed(_fs.walk_groups(parent)):
            _fs.kill_pids(_fs.read_pids(group))
        _fs.wait_for(lambda: not any(_fs.read_pids(g) for g in _fs.walk_groups(parent)), 5.0)
        _fs.remove_tree(parent)


def job_in(parent: Path) -> V2JobCgroup:
    job_id = str(uuid.uuid4())
    path = parent / f"job-{job_id}"
    path.mkdir()
    return V2JobCgroup(job_id, path, kill_timeout_s=5.0)


def test_membership_accounting_and_removal(scratch: Path) -> None:
    job = job_in(scratch)
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    proc = spawn_in(job, sys.executable, "-c", burn)
    assert _fs.wait_for(lambda: proc.pid in job.pids(), 5.0)
    assert proc.wait(timeout=10) == 0
    stats = job.read_stats()
    # cpu.stat is kept by the core even with no cpu controller enabled.
    assert stats.cpu_usage_usec >= 200_000, stats
    assert job.pids() == []
    job.remove()
    assert not job.path.exists()


def test_cgroup_kill_reaches_double_forked_setsid_processes(scratch: Path) -> None:
    job = job_in(scratch)
    if not (job.path / "cgroup.kill").exists():
        pytest.skip("kernel older than 5.14: no cgroup.kill")
    spawn_in(job, "sh", "-c", 'setsid sh -c "sleep 100 & sleep 100" &').wait(timeout=5)
    assert _fs.wait_for(lambda: len(job.pids()) >= 2, 5.0), job.pids()
    survivors = job.pids()
    job.kill_all()
    assert job.pids() == []
    assert _fs.wait_for(lambda: all(pid_gone(p) for p in survivors), 5.0)


def test_freezer_fallback_kills_a_group_the_job_froze_itself(scratch: Path) -> None:
    """Kernels without cgroup.kill take the freeze-and-kill path; a sub-group the
    job froze on its own must be thawed or its processes would never die."""
    job = job_in(scratch)
    inner = job.path / "inner"
    inner.mkdir()
    outer_proc = spawn_in(job, "sleep", "100")
    inner_proc = subprocess.Popen(["sh", "-c", f'echo $$ > "{inner}/cgroup.procs"; exec sleep 100'])
    assert _fs.wait_for(lambda: inner_proc.pid in _fs.read_pids(inner), 5.0)
    _fs.write_value(inner / "cgroup.freeze", "1")
    assert _fs.wait_for(lambda: "frozen 1" in (inner / "cgroup.events").read_text(), 5.0)
    job._freeze_and_kill()
    assert outer_proc.wait(timeout=5) == -9
    assert inner_proc.wait(timeout=5) == -9
    assert _fs.wait_for(lambda: not _fs.read_pids(job.path) and not _fs.read_pids(inner), 5.0)
    job.remove()
    assert not job.path.exists()


def test_manager_names_missing_controllers(scratch: Path, v2_mount: Path) -> None:
    available = set((v2_mount / "cgroup.controllers").read_text().split())
    missing = {"cpu", "memory", "io", "pids"} - available
    if not missing:
        pytest.skip("this cgroup2 mount has every controller: test_cgroup_kernel covers it")
    manager = V2CgroupManager(v2_mount, scratch.name)
    with pytest.raises(IsolationError) as err:
        manager.create(str(uuid.uuid4()), Limits())
    assert all(name in str(err.value) for name in missing)
    assert manager.leftover_job_ids() == []
