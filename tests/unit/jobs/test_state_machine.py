from __future__ import annotations

import signal
from dataclasses import replace

import grpc
import pytest

from joblet.errors import FailedPrecondition
from joblet.jobs.model import FINAL_STATUSES, Job, JobSpec, JobStatus
from joblet.jobs.state_machine import (
    Canceled,
    Event,
    Exited,
    IllegalTransition,
    LaunchFailed,
    Overruled,
    Preempting,
    Queued,
    Released,
    Requeued,
    Scheduled,
    Started,
    Starting,
    exit_outcome,
    transition,
)

S = JobStatus
JOB = Job(
    id="0a1b2c3d-0000-4000-8000-000000000001",
    spec=JobSpec(command="true"),
    status=S.INITIALIZING,
    created_at=1.0,
)

EVENTS: dict[str, Event] = {
    "released": Released(),
    "queued": Queued(),
    "scheduled": Scheduled(at=100.0),
    "starting": Starting(),
    "started": Started(pid=42, at=5.0),
    "exited": Exited(exit_code=0, signal=0, at=9.0),
    "canceled": Canceled(by="admin", at=7.0),
    "launch_failed": LaunchFailed(reason="launcher unavailable", at=6.0),
    "preempting": Preempting(for_job="urgent"),
    "requeued": Requeued(at=10.0),  # legal only for a job stopped to be requeued
}

# (from status, event name) -> resulting status; every other pair is illegal.
LEGAL: dict[tuple[JobStatus, str], JobStatus] = {
    (S.PENDING, "released"): S.INITIALIZING,
    (S.PENDING, "canceled"): S.CANCELED,
    (S.PENDING, "launch_failed"): S.FAILED,
    (S.INITIALIZING, "queued"): S.QUEUED,
    (S.SCHEDULED, "queued"): S.QUEUED,
    (S.INITIALIZING, "scheduled"): S.SCHEDULED,
    (S.QUEUED, "starting"): S.INITIALIZING,
    (S.SCHEDULED, "starting"): S.INITIALIZING,
    (S.INITIALIZING, "started"): S.RUNNING,
    (S.QUEUED, "started"): S.RUNNING,
    (S.SCHEDULED, "started"): S.RUNNING,
    (S.RUNNING, "exited"): S.COMPLETED,
    (S.RUNNING, "preempting"): S.RUNNING,
    (S.SCHEDULED, "canceled"): S.CANCELED,
    (S.QUEUED, "canceled"): S.CANCELED,
    (S.INITIALIZING, "launch_failed"): S.FAILED,
    (S.QUEUED, "launch_failed"): S.FAILED,
    (S.SCHEDULED, "launch_failed"): S.FAILED,
}

ALL_PAIRS = [(status, name) for status in JobStatus for name in EVENTS]


@pytest.mark.parametrize(("status", "name"), [p for p in ALL_PAIRS if p in LEGAL])
def test_legal_transitions(status: JobStatus, name: str) -> None:
    job = replace(JOB, status=status)
    after = transition(job, EVENTS[name])
    assert after.status == LEGAL[(status, name)]
    assert job.status == status  # the input is untouched: jobs are immutable values
    assert after.id == job.id
    assert after.spec is job.spec


@pytest.mark.parametrize(("status", "name"), [p for p in ALL_PAIRS if p not in LEGAL])
def test_illegal_transitions_are_rejected(status: JobStatus, name: str) -> None:
    job = replace(JOB, status=status)
    with pytest.raises(IllegalTransition) as info:
        transition(job, EVENTS[name])
    assert job.id in str(info.value)
    assert str(status) in str(info.value)


def test_illegal_transition_is_a_failed_precondition() -> None:
    assert issubclass(IllegalTransition, FailedPrecondition)
    assert IllegalTransition.code == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
def test_final_statuses_accept_nothing(status: JobStatus) -> None:
    job = replace(JOB, status=status)
    for event in EVENTS.values():
        with pytest.raises(IllegalTransition):
            transition(job, event)


def test_second_writer_loses() -> None:
    running = transition(JOB, Started(pid=42, at=5.0))
    stopped = transition(running, Exited(exit_code=143, signal=15, at=8.0, stopped_by="admin"))
    with pytest.raises(IllegalTransition):
        transition(stopped, Exited(exit_code=0, signal=0, at=9.0))
    assert stopped.status == S.STOPPED


def test_fields_recorded_along_the_way() -> None:
    scheduled = transition(JOB, Scheduled(at=100.0))
    assert scheduled.scheduled_at == 100.0
    running = transition(scheduled, Started(pid=42, at=101.0))
    assert (running.pid, running.started_at) == (42, 101.0)
    done = transition(running, Exited(exit_code=3, signal=0, at=110.0))
    assert (done.status, done.exit_code, done.ended_at, done.pid) == (S.FAILED, 3, 110.0, 0)
    assert done.end_reason == "exit code 3"
    assert done.started_at == 101.0


def test_cancel_records_who_and_when() -> None:
    canceled = transition(transition(JOB, Scheduled(at=100.0)), Canceled(by="alice", at=50.0))
    assert (canceled.status, canceled.ended_at) == (S.CANCELED, 50.0)
    assert canceled.end_reason == "canceled by alice"


def test_launch_failure_records_reason() -> None:
    failed = transition(JOB, LaunchFailed(reason="no such command", at=2.0))
    assert (failed.status, failed.exit_code, failed.ended_at) == (S.FAILED, -1, 2.0)
    assert failed.end_reason == "no such command"


@pytest.mark.parametrize(
    ("event", "status", "reason"),
    [
        (Exited(0, 0, 1.0), S.COMPLETED, "exit code 0"),
        (Exited(1, 0, 1.0), S.FAILED, "exit code 1"),
        (Exited(255, 0, 1.0), S.FAILED, "exit code 255"),
        (Exited(137, 9, 1.0), S.FAILED, "killed by signal 9 (SIGKILL)"),
        (Exited(139, 11, 1.0), S.FAILED, "killed by signal 11 (SIGSEGV)"),
        (Exited(128 + 99, 99, 1.0), S.FAILED, "killed by signal 99 (unknown)"),
        (Exited(143, 15, 1.0, stopped_by="bob"), S.STOPPED, "stopped by bob"),
        (Exited(0, 0, 1.0, stopped_by="bob"), S.STOPPED, "stopped by bob"),
        (Exited(137, 9, 1.0, timed_out=True), S.FAILED, "timeout"),
        (Exited(137, 9, 1.0, timed_out=True, stopped_by="bob"), S.FAILED, "timeout"),
        (Exited(137, 9, 1.0, oom_killed=True), S.FAILED, "out of memory"),
        (Exited(137, 9, 1.0, oom_killed=True, timed_out=True), S.FAILED, "out of memory"),
        (Exited(0, 0, 1.0, oom_killed=True, lost="supervisor gone"), S.FAILED, "supervisor gone"),
    ],
)
def test_exit_outcomes(event: Exited, status: JobStatus, reason: str) -> None:
    assert exit_outcome(event) == (status, reason)
    running = replace(JOB, status=S.RUNNING, pid=42)
    after = transition(running, event)
    assert (after.status, after.end_reason, after.exit_code) == (status, reason, event.exit_code)


def test_signal_names_come_from_the_platform() -> None:
    outcome = exit_outcome(Exited(128 + signal.SIGTERM, signal.SIGTERM, 1.0))
    assert outcome == (S.FAILED, f"killed by signal {int(signal.SIGTERM)} (SIGTERM)")


def test_a_requirement_that_cannot_hold_is_the_cancel_reason() -> None:
    job = transition(
        replace(JOB, status=S.PENDING),
        Canceled(by="workflow", at=3.0, reason='requirement "a=COMPLETED": a is FAILED'),
    )
    assert job.status is S.CANCELED
    assert job.end_reason == 'requirement "a=COMPLETED": a is FAILED'


def test_pending_waits_and_is_not_final() -> None:
    assert S.PENDING.is_waiting
    assert not S.PENDING.is_final


def test_a_pending_job_stays_pending_after_a_restart() -> None:
    from joblet.jobs import recovery

    pending = replace(JOB, status=S.PENDING)
    assert recovery.decide(pending, None, None) == recovery.Wait()


def test_a_preempted_job_is_stopped_counted_and_requeued_under_its_id() -> None:
    job = transition(replace(JOB, spec=replace(JOB.spec, preemptible=True)), Started(1, 2.0))
    job = transition(job, Preempting(for_job="urgent-id"))
    assert job.status is S.RUNNING and job.preempted_for == "urgent-id"
    ended = transition(job, Exited(137, 9, 5.0, preempted_by="urgent-id", requeue=True))
    assert ended.status is S.STOPPED
    assert ended.end_reason == "preempted by urgent-id"
    assert (ended.preemptions, ended.requeue_due, ended.preempted_for) == (1, True, "")
    again = transition(ended, Requeued(at=6.0))
    assert again.id == job.id and again.status is S.QUEUED
    assert again.wait_reason == "preempted by urgent-id, requeued"
    assert (again.queued_at, again.requeue_due, again.end_reason, again.pid) == (6.0, False, "", 0)
    assert again.preemptions == 1
    with pytest.raises(IllegalTransition):
        transition(again, Requeued(at=7.0))


def test_a_preempted_job_that_may_not_be_requeued_stays_stopped() -> None:
    job = transition(JOB, Started(1, 2.0))
    ended = transition(job, Exited(0, 0, 5.0, preempted_by="u", requeue=False))
    assert (ended.status, ended.end_reason, ended.requeue_due) == (
        S.STOPPED,
        "preempted by u",
        False,
    )
    with pytest.raises(IllegalTransition, match="not stopped to be requeued"):
        transition(ended, Requeued(at=6.0))


def test_a_user_stop_during_a_preemption_is_a_user_stop() -> None:
    job = transition(JOB, Started(1, 2.0))
    ended = transition(
        job, Exited(143, 15, 5.0, stopped_by="admin", preempted_by="u", requeue=True)
    )
    assert (ended.end_reason, ended.requeue_due, ended.preemptions) == (
        "stopped by admin",
        False,
        0,
    )


def test_queued_records_when_it_began_to_wait_and_why() -> None:
    job = transition(JOB, Queued(at=3.5, reason="2 jobs running"))
    assert (job.queued_at, job.wait_reason) == (3.5, "2 jobs running")


def test_a_restart_between_a_preemptions_stop_and_its_requeue_requeues_it() -> None:
    from joblet.jobs import recovery

    due = replace(JOB, status=S.STOPPED, requeue_due=True, end_reason="preempted by u")
    assert recovery.decide(due, None, None) == recovery.Requeue()
    done = replace(due, requeue_due=False)
    assert recovery.decide(done, None, None) == recovery.Keep()


def test_a_job_starting_when_the_daemon_died_runs_only_if_it_surely_never_ran() -> None:
    from joblet.isolation.spec import JobExit
    from joblet.jobs import recovery

    starting = replace(JOB, status=S.INITIALIZING)
    # The launcher that saw every launch knows nothing of it: it never ran.
    assert recovery.decide(starting, None, None, launches_known=True) == recovery.Relaunch()
    # A new launcher (or a reboot) cannot tell: settled, never run twice.
    lost = recovery.decide(starting, None, None, launches_known=False)
    assert lost == recovery.Lost(recovery.INTERRUPTED_REASON)
    # It did reach the launcher: followed, or its exit recorded.
    assert recovery.decide(starting, 42, None, launches_known=True) == recovery.Reattach(42)
    ended = JobExit(starting.id, 0, 0, 1)
    assert recovery.decide(starting, None, ended, launches_known=True) == recovery.Ended(ended)
    # A job recorded as running that the launcher lost is never run again.
    running = replace(JOB, status=S.RUNNING)
    assert recovery.decide(running, None, None, launches_known=True) == recovery.Lost(
        recovery.LOST_REASON
    )


def test_an_end_the_cluster_overruled_keeps_its_exit_code_and_time() -> None:
    """A placed job's end recorded on a node whose lease lapsed meanwhile
    takes the cluster's outcome; only a final record can be overruled."""
    running = transition(JOB, Started(pid=42, at=5.0))
    ended = transition(running, Exited(exit_code=0, signal=0, at=9.0))
    overruled = transition(ended, Overruled("node lost"))
    assert (overruled.status, overruled.end_reason) == (S.FAILED, "node lost")
    assert (overruled.exit_code, overruled.ended_at) == (0, 9.0)
    for status in set(JobStatus) - FINAL_STATUSES:
        with pytest.raises(IllegalTransition):
            transition(replace(JOB, status=status), Overruled("node lost"))
