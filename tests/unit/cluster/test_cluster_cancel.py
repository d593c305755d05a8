"""A job canceled in the store for its unreachable owner: only one that waits."""

from __future__ import annotations

import pytest

from joblet.cluster.jobs import canceled_record
from joblet.errors import FailedPrecondition
from joblet.jobs.model import Job, JobSpec, JobStatus


def _job(status: JobStatus) -> Job:
    return Job(id="j1", spec=JobSpec(command="true"), status=status, node_id="a")


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.SCHEDULED])
def test_a_waiting_job_is_canceled_by_the_caller(status: JobStatus) -> None:
    canceled = canceled_record(_job(status), "alice", 12.5)
    assert (canceled.status, canceled.ended_at) == (JobStatus.CANCELED, 12.5)
    assert "alice" in canceled.end_reason


@pytest.mark.parametrize("status", [JobStatus.RUNNING, JobStatus.COMPLETED])
def test_a_job_that_may_run_there_is_left_to_its_node(status: JobStatus) -> None:
    with pytest.raises(FailedPrecondition, match="only a queued or scheduled job"):
        canceled_record(_job(status), "alice", 1.0)
