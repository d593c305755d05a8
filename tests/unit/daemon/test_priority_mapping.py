"""Priorities and preemption in Job and GetJobStatusRes."""

from __future__ import annotations

from joblet.daemon import mappers
from joblet.jobs.model import Job, JobSpec, JobStatus

SPEC = JobSpec(command="x", priority=-4, preemptible=True, on_preempt="stop", stop_grace_s=1.5)
JOB = Job("j", SPEC, JobStatus.QUEUED, preemptions=2, wait_reason="preempted by k, requeued")


def test_status_and_list_entries_carry_the_fields() -> None:
    for message in (mappers.status_message(JOB), mappers.job_message(JOB, details=False)):
        assert (message.priority, message.preemptible, message.onPreempt) == (-4, True, "stop")
        assert (message.preemptions, message.waitReason) == (2, "preempted by k, requeued")
        assert message.stopGracePeriod == "1.5s"


def test_defaults_for_a_plain_job() -> None:
    message = mappers.status_message(Job("p", JobSpec(command="x"), JobStatus.RUNNING))
    assert (message.priority, message.preemptible, message.onPreempt) == (0, False, "requeue")
    assert (message.preemptions, message.waitReason, message.stopGracePeriod) == (0, "", "")
