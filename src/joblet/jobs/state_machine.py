"""The job lifecycle as a pure function: `transition(job, event) -> job`.

An event that is not allowed from the job's current status raises
`IllegalTransition`: two racing writers (a stop and a natural exit, say) cannot
both win; the second one is rejected and the caller decides what that means.
"""

from __future__ import annotations

import signal as signal_module
from dataclasses import dataclass, replace

from joblet.errors import FailedPrecondition
from joblet.jobs.model import FINAL_STATUSES, Job, JobStatus

S = JobStatus


class IllegalTransition(FailedPrecondition):
    pass


@dataclass(frozen=True)
class Queued:
    """It waits for a slot; `at` starts its aging, `reason` says why it waits."""

    at: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class GpusGranted:
    """It holds these GPUs (host indices) for its start and run."""

    indices: tuple[int, ...]


@dataclass(frozen=True)
class GpuWait:
    """It waits for GPUs (FIFO among GPU jobs, outside the slot queue)."""

    at: float
    reason: str


@dataclass(frozen=True)
class Scheduled:
    at: float


@dataclass(frozen=True)
class Started:
    pid: int
    at: float


@dataclass(frozen=True)
class Exited:
    """The job's init ended. `stopped_by` is set when a user asked for the stop;
    `timed_out` and `oom_killed` when the system ended it."""

    exit_code: int
    signal: int
    at: float
    stopped_by: str = ""
    timed_out: bool = False
    oom_killed: bool = False
    lost: str = ""  # why the end was not observed (supervisor gone, ...)
    preempted_by: str = ""  # it was stopped to make room for this job
    requeue: bool = False  # ... and goes back to the queue (see Requeued)


@dataclass(frozen=True)
class Canceled:
    by: str
    at: float
    reason: str = ""  # when not the user's: a requirement that can no longer hold


@dataclass(frozen=True)
class LaunchFailed:
    reason: str
    at: float


@dataclass(frozen=True)
class Released:
    """A pending job's requirements hold: it goes the way of a new job."""


@dataclass(frozen=True)
class Preempting:
    """A running job is being stopped to make room for `for_job`: recorded
    before its SIGTERM, so a daemon restarted meanwhile knows why it ended."""

    for_job: str


@dataclass(frozen=True)
class Requeued:
    """A job stopped by a preemption waits again (same id, from scratch)."""

    at: float


@dataclass(frozen=True)
class Starting:
    """A queued or scheduled job's turn came: it is being launched."""


@dataclass(frozen=True)
class Overruled:
    """An end recorded here that the cluster decided otherwise meanwhile (a
    placed job of a node that lost its lease): FAILED for `reason`, its exit
    code and end time kept as they were."""

    reason: str


Event = (
    Queued
    | Scheduled
    | Released
    | Starting
    | Started
    | Exited
    | Canceled
    | LaunchFailed
    | Preempting
    | Requeued
    | GpusGranted
    | GpuWait
    | Overruled
)

_ALLOWED: dict[type, frozenset[JobStatus]] = {
    Released: frozenset({S.PENDING}),
    Queued: frozenset({S.INITIALIZING, S.SCHEDULED}),
    Scheduled: frozenset({S.INITIALIZING}),
    Starting: frozenset({S.QUEUED, S.SCHEDULED}),
    Started: frozenset({S.INITIALIZING, S.QUEUED, S.SCHEDULED}),
    Exited: frozenset({S.RUNNING}),
    Preempting: frozenset({S.RUNNING}),
    Requeued: frozenset({S.STOPPED}),
    GpusGranted: frozenset({S.INITIALIZING, S.QUEUED, S.SCHEDULED}),
    GpuWait: frozenset({S.INITIALIZING, S.QUEUED, S.SCHEDULED}),
    Canceled: frozenset({S.PENDING, S.SCHEDULED, S.QUEUED}),
    # PENDING: its release failed before any launch (its uploads, say).
    LaunchFailed: frozenset({S.PENDING, S.INITIALIZING, S.QUEUED, S.SCHEDULED}),
    Overruled: FINAL_STATUSES,
}


def transition(job: Job, event: Event) -> Job:
    allowed = _ALLOWED[type(event)]
    if job.status not in allowed:
        raise IllegalTransition(
            f"job {job.id} is {job.status}: cannot apply {type(event).__name__.lower()}"
        )
    if isinstance(event, Requeued) and not job.requeue_due:
        raise IllegalTransition(f"job {job.id} is {job.status}: it was not stopped to be requeued")
    match event:
        case Queued(at=at, reason=reason):
            return replace(job, status=S.QUEUED, queued_at=at or job.created_at, wait_reason=reason)
        case Preempting() | GpusGranted() | GpuWait():
            return _marked(job, event)
        case Requeued(at=at):
            return replace(
                job,
                status=S.QUEUED,
                queued_at=at,
                wait_reason=f"{job.end_reason}, requeued",
                requeue_due=False,
                started_at=0.0,
                ended_at=0.0,
                exit_code=0,
                end_reason="",
                pid=0,
                gpu_indices=(),
            )
        case Scheduled(at=at):
            return replace(job, status=S.SCHEDULED, scheduled_at=at)
        case Starting() | Released():
            return replace(job, status=S.INITIALIZING)
        case Started(pid=pid, at=at):
            return replace(job, status=S.RUNNING, pid=pid, started_at=at)
        case Exited():
            return _exited(job, event)
        case Canceled(by=by, at=at, reason=reason):
            why = reason or f"canceled by {by}"
            return replace(job, status=S.CANCELED, ended_at=at, end_reason=why)
        case LaunchFailed() | Overruled():
            return _failed(job, event)
    raise AssertionError(f"unhandled event {event!r}")  # pragma: no cover


def _failed(job: Job, event: LaunchFailed | Overruled) -> Job:
    if isinstance(event, Overruled):  # the end as it was, its outcome the cluster's
        return replace(job, status=S.FAILED, end_reason=event.reason)
    return replace(job, status=S.FAILED, ended_at=event.at, exit_code=-1, end_reason=event.reason)


def _marked(job: Job, event: Preempting | GpusGranted | GpuWait) -> Job:
    """Events that note something on the job: its preemption, its GPUs, a GPU wait."""
    if isinstance(event, Preempting):
        return replace(job, preempted_for=event.for_job)
    if isinstance(event, GpusGranted):
        return replace(job, gpu_indices=event.indices)
    # Waiting for GPUs after waiting for a slot: its age counts from the first wait.
    queued_at = job.queued_at if job.status is S.QUEUED else event.at
    return replace(job, status=S.QUEUED, queued_at=queued_at, wait_reason=event.reason)


def _exited(job: Job, event: Exited) -> Job:
    status, reason = exit_outcome(event)
    preempted = reason == preempted_reason(event.preempted_by)
    return replace(
        job,
        status=status,
        ended_at=event.at,
        exit_code=event.exit_code,
        end_reason=reason,
        pid=0,
        preempted_for="",
        preemptions=job.preemptions + 1 if preempted else job.preemptions,
        requeue_due=preempted and event.requeue,
    )


def preempted_reason(by: str) -> str:
    return f"preempted by {by}"


def exit_outcome(event: Exited) -> tuple[JobStatus, str]:
    """Which final status an exit means, and the reason recorded with it.
    Priority: an out-of-memory kill or a timeout explains a signal better than
    the signal itself; a user's stop explains it better than its exit code."""
    if event.lost:
        return S.FAILED, event.lost
    if event.oom_killed:
        return S.FAILED, "out of memory"
    if event.timed_out:
        return S.FAILED, "timeout"
    if event.stopped_by:
        return S.STOPPED, f"stopped by {event.stopped_by}"
    if event.preempted_by:
        return S.STOPPED, preempted_reason(event.preempted_by)
    if event.signal:
        return S.FAILED, f"killed by signal {event.signal} ({_signal_name(event.signal)})"
    if event.exit_code == 0:
        return S.COMPLETED, "exit code 0"
    return S.FAILED, f"exit code {event.exit_code}"


def _signal_name(signum: int) -> str:
    try:
        return signal_module.Signals(signum).name
    except ValueError:
        return "unknown"
