"""What a restarted daemon does with each job it loads from the state store.

Pure: the decision takes the job, whether the launcher still runs it, and the
exit record the launcher may have left; the manager carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass

from joblet.isolation.spec import JobExit
from joblet.jobs.model import Job, JobStatus

LOST_REASON = (
    "lost: its processes were gone when the daemon restarted "
    "(host reboot or launcher killed); it was not re-run"
)
ORPHANED_REASON = (
    "lost: its supervisor (the launcher) was killed, so its output could no longer "
    "be recorded; it was stopped and not re-run"
)
INTERRUPTED_REASON = "lost: the daemon restarted while the job was starting; it was not re-run"
LAUNCHER_LOST_REASON = (
    "launcher lost: the process that supervised the job died while it ran, so its "
    "output could no longer be recorded; it was stopped and not re-run"
)
BROKEN_LAUNCH_REASON = (
    "the connection to the launcher broke during the launch and the job may have "
    "started; it was not started again"
)
# The SYSTEM line that ends such a job's log.
LAUNCHER_LOST_NOTE = (
    b"launcher lost: the job was stopped; output after this point was not recorded\n"
)


@dataclass(frozen=True)
class Keep:
    """A finished job: list it as it is."""


@dataclass(frozen=True)
class Wait:
    """A pending job: it stays PENDING; its workflow decides when it runs."""


@dataclass(frozen=True)
class Rearm:
    """A scheduled job: arm its timer again (a past time runs it at once, once)."""


@dataclass(frozen=True)
class Requeue:
    """A queued job: back into the queue, in its original order (a job
    stopped by a preemption and due for its requeue: queued now)."""


@dataclass(frozen=True)
class Relaunch:
    """It was starting when the daemon died and never reached the launcher:
    it has not run, so it is queued and starts now, once."""


@dataclass(frozen=True)
class Reattach:
    """Still running under the launcher: follow it again."""

    pid: int


@dataclass(frozen=True)
class Ended:
    """It ended while the daemon was away: record how."""

    exit: JobExit


@dataclass(frozen=True)
class Lost:
    """Its processes are gone and nobody saw them end."""

    reason: str


Recovery = Keep | Wait | Rearm | Requeue | Relaunch | Reattach | Ended | Lost


def decide(
    job: Job,
    running_pid: int | None,
    exit_record: JobExit | None,
    orphaned: bool = False,
    launches_known: bool = False,
) -> Recovery:
    """`orphaned`: still alive, but started by a launcher that has since died.
    `launches_known`: the launcher answering now is the one the previous
    daemon launched through, so every job it started is either still listed
    or has left its exit record."""
    if job.status.is_final:
        # Stopped by a preemption, and the daemon died before it was queued again.
        return Requeue() if job.requeue_due else Keep()
    if job.status is JobStatus.PENDING:
        return Wait()
    if job.status is JobStatus.SCHEDULED:
        return Rearm()
    if job.status is JobStatus.QUEUED:
        return Requeue()
    # RUNNING, or INITIALIZING when the daemon died during the launch.
    if exit_record is not None:
        return Ended(exit_record)
    if running_pid is not None:
        return Lost(ORPHANED_REASON) if orphaned else Reattach(running_pid)
    if job.status is JobStatus.INITIALIZING:
        # No trace of a start at the launcher that saw every launch: the
        # daemon died before the launch left it. Anywhere else (a new launcher,
        # a reboot) a start may have gone unrecorded, and it must not run twice.
        return Relaunch() if launches_known else Lost(INTERRUPTED_REASON)
    return Lost(LOST_REASON)


def after_launcher_loss(
    running_pid: int | None, adopted: bool, exit_record: JobExit | None
) -> Reattach | Ended | Lost:
    """A job that ran when the daemon's connection to the launcher broke, once
    a launcher answers again. `running_pid`: the launcher lists the job;
    `adopted`: a previous launcher started it (the one that died)."""
    if running_pid is not None and not adopted:
        return Reattach(running_pid)  # the same launcher, still relaying its output
    if exit_record is not None and not exit_record.lost:
        return Ended(exit_record)  # it ended, and its launcher recorded how
    return Lost(LAUNCHER_LOST_REASON)


def after_broken_launch(exit_recorded: bool, cgroup_used: bool | None) -> Relaunch | Lost:
    """A launch whose connection to the launcher broke before the answer.
    `cgroup_used`: a process ran in the job's cgroup (its init joins it before
    it starts the command); None where no cgroup can tell. Only a job that
    surely never started is launched again."""
    if exit_recorded or cgroup_used is not False:
        return Lost(BROKEN_LAUNCH_REASON)
    return Relaunch()
