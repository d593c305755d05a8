"""What becomes of a running job once a launcher answers again after the
connection to it broke; and whether the disk has room for a new job."""

from __future__ import annotations

import pytest

from joblet.isolation.spec import JobExit
from joblet.jobs import recovery
from joblet.jobs.workspace import MIN_FREE_BYTES, MIN_FREE_INODES, room_problem

EXIT = JobExit("j1", 3, 0, 10)


def test_a_job_the_same_launcher_still_runs_is_followed_on() -> None:
    assert recovery.after_launcher_loss(42, False, None) == recovery.Reattach(42)


def test_a_job_that_ended_meanwhile_keeps_its_real_exit() -> None:
    assert recovery.after_launcher_loss(None, False, EXIT) == recovery.Ended(EXIT)


def test_a_job_of_a_dead_launcher_is_lost() -> None:
    lost = recovery.Lost(recovery.LAUNCHER_LOST_REASON)
    assert recovery.after_launcher_loss(42, True, None) == lost  # adopted: its pipes died
    assert recovery.after_launcher_loss(None, False, None) == lost
    # An exit record a launcher wrote without seeing the end is no real exit.
    lost_exit = JobExit("j1", -1, 0, 10, lost=True)
    assert recovery.after_launcher_loss(None, False, lost_exit) == lost
    assert recovery.LAUNCHER_LOST_REASON.startswith("launcher lost")


@pytest.mark.parametrize(
    ("exit_recorded", "cgroup_used", "relaunch"),
    [
        (False, False, True),  # no trace anywhere: it never started
        (False, True, False),  # a process ran in its cgroup
        (True, False, False),  # its launcher recorded an exit
        (False, None, False),  # no cgroup to tell: it may have run
    ],
)
def test_a_broken_launch_is_retried_only_when_it_surely_never_started(
    exit_recorded: bool, cgroup_used: bool | None, relaunch: bool
) -> None:
    action = recovery.after_broken_launch(exit_recorded, cgroup_used)
    assert isinstance(action, recovery.Relaunch) is relaunch
    if not relaunch:
        assert action == recovery.Lost(recovery.BROKEN_LAUNCH_REASON)


def test_room_for_a_new_job() -> None:
    assert room_problem(MIN_FREE_BYTES + 100, 1000, 100) is None
    assert "KiB free" in str(room_problem(MIN_FREE_BYTES + 99, 1000, 100))
    assert "inodes free" in str(room_problem(1 << 30, MIN_FREE_INODES - 1, 0))
