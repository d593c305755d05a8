"""The manager's preemption decision over a real job table (pure: no
processes): who is taken, and nobody for a job that could not start."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from joblet.config.model import DaemonConfig, JobsConfig, RootLayout, SecurityConfig
from joblet.jobs.ending import JobEnding
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.preemption import Preemptor
from joblet.jobs.state_machine import Preempting, Queued, Started
from joblet.jobs.table import JobRuntime, JobTable
from joblet.logs.follow import LogHub
from joblet.logs.service import JobLogs


def _config(preemption: bool = True, limit: int = 2) -> DaemonConfig:
    return DaemonConfig(
        layout=RootLayout(Path("/nonexistent")),
        security=SecurityConfig("", "", ""),
        jobs=JobsConfig(max_concurrent_jobs=limit, preemption=preemption),
    )


async def _confirm(_what: str) -> None:
    return None


def _world(config: DaemonConfig) -> tuple[Preemptor, JobTable]:
    table = JobTable(aging_s=config.jobs.priority_aging_s)
    logs = JobLogs(LogHub(), lambda job_id: Path("/nonexistent") / job_id)
    ending = JobEnding(table, logs, 5.0, lambda: None)
    running = [("batch-low", -5, True), ("batch-mid", 0, True), ("steady", -9, False)]
    for n, (job_id, priority, preemptible) in enumerate(running):
        spec = JobSpec(command="x", priority=priority, preemptible=preemptible)
        table.registry.add(Job(job_id, spec, JobStatus.INITIALIZING, created_at=n))
        table.runtime[job_id] = JobRuntime()
        table.apply(job_id, Started(pid=100 + n, at=float(n)))
    return Preemptor(config, table, ending, confirm=_confirm), table


def _new(table: JobTable, job_id: str, **spec: object) -> Job:
    job = Job(job_id, JobSpec(command="x", **spec), JobStatus.INITIALIZING, created_at=50.0)  # type: ignore[arg-type]
    table.registry.add(job)
    table.runtime[job_id] = JobRuntime()
    return job


def test_the_lowest_preemptible_job_is_taken_for_a_higher_one() -> None:
    preemptor, table = _world(_config(limit=3))
    urgent = _new(table, "urgent", priority=1)
    assert preemptor.victims_for(urgent, 60.0) == ("batch-low",)


def test_a_job_of_lower_priority_than_every_preemptible_one_takes_nothing() -> None:
    preemptor, table = _world(_config(limit=3))
    assert preemptor.victims_for(_new(table, "low", priority=-5), 60.0) == ()


def test_a_job_that_could_not_start_takes_nothing() -> None:
    preemptor, table = _world(_config(limit=3))
    gpu = _new(table, "gpu", priority=10, gpu_count=1)
    assert preemptor.blocker(gpu) == "it asks for GPUs, which preemption does not free"
    assert preemptor.victims_for(gpu, 60.0) == ()
    runtime = _new(table, "rt", priority=10, runtime="python-3.11")  # no runtime pinned
    assert "runtime python-3.11 is not available" in preemptor.blocker(runtime)
    assert preemptor.victims_for(runtime, 60.0) == ()


def test_jobs_already_leaving_and_better_jobs_waiting_are_counted() -> None:
    preemptor, table = _world(_config(limit=3))
    first = _new(table, "first", priority=3)
    victims = preemptor.victims_for(first, 60.0)
    assert victims == ("batch-low",)
    table.apply("batch-low", Preempting(for_job="first"))
    table.apply("first", Queued(at=60.0))
    table.registry.enqueue("first")
    # The leaving job's slot goes to `first` (ahead in the queue): a second
    # urgent job needs one slot more, and takes the next lowest.
    second = _new(table, "second", priority=2)
    assert preemptor.victims_for(second, 61.0) == ("batch-mid",)


def test_off_by_default() -> None:
    preemptor, table = _world(replace(_config(), jobs=JobsConfig(max_concurrent_jobs=3)))
    assert preemptor.victims_for(_new(table, "urgent", priority=100), 60.0) == ()
