"""After a launch whose connection to the launcher broke, the job's cgroup
tells (on the real kernel, v1 or v2) whether anything of it ran: only a job
that surely never started is launched again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cgroup_helpers import spawn_in

from joblet.isolation.records import write_exit
from joblet.isolation.spec import JobExit
from joblet.jobs.launch import never_started
from joblet.resources.interface import CgroupManager, JobCgroup, Limits

pytestmark = pytest.mark.privileged


@pytest.fixture
def cgroup(manager: CgroupManager) -> Iterator[JobCgroup]:
    made = manager.create(uuid.uuid4().hex, Limits())
    yield made
    made.kill_all()
    made.remove()


def test_a_cgroup_no_process_used_means_it_never_started(
    manager: CgroupManager, cgroup: JobCgroup, tmp_path: Path
) -> None:
    assert never_started(manager, cgroup, str(tmp_path))


def test_a_process_that_ran_and_ended_there_means_it_may_have_started(
    manager: CgroupManager, cgroup: JobCgroup, tmp_path: Path
) -> None:
    spawn_in(cgroup, "true").wait()  # a command that started and already ended
    assert cgroup.pids() == []
    assert not never_started(manager, cgroup, str(tmp_path))


def test_a_running_process_is_killed_and_the_job_not_launched_again(
    manager: CgroupManager, cgroup: JobCgroup, tmp_path: Path
) -> None:
    proc = spawn_in(cgroup, "sleep", "30")
    try:
        deadline = time.monotonic() + 10
        while proc.pid not in cgroup.pids():  # joined (then it execs sleep)
            assert time.monotonic() < deadline, "the process never joined its cgroup"
            time.sleep(0.01)
        assert not never_started(manager, cgroup, str(tmp_path))
        assert proc.wait(timeout=10) != 0  # killed
    finally:
        proc.kill()
        proc.wait()


def test_an_exit_record_means_it_ran(
    manager: CgroupManager, cgroup: JobCgroup, tmp_path: Path
) -> None:
    write_exit(str(tmp_path), JobExit("j", 0, 0, 1))
    assert not never_started(manager, cgroup, str(tmp_path))
