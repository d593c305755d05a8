"""ListJobs stays under 3 MiB however big the jobs' environments and however
many jobs there are: every job listed while they fit (the biggest without
their environment and arguments), else every unfinished job and the newest
finished ones."""

from __future__ import annotations

from joblet.daemon.job_listing import LIST_BUDGET_BYTES, list_message
from joblet.jobs.model import Job, JobSpec, JobStatus

MIB = 1024 * 1024


def job(
    n: int,
    env_bytes: int,
    args: tuple[str, ...] = (),
    *,
    status: JobStatus = JobStatus.SCHEDULED,
    ended_at: float = 0.0,
    name: str = "",
) -> Job:
    environment = {f"V{i}": "x" * (env_bytes // 8) for i in range(8)} if env_bytes else {}
    spec = JobSpec(
        command="echo",
        args=args,
        name=name,
        environment=environment,
        secret_environment={"TOKEN": "t"},
    )
    return Job(id=f"job-{n:05d}", spec=spec, status=status, created_at=float(n), ended_at=ended_at)


def test_small_listings_are_whole() -> None:
    jobs = [job(n, 1000, ("a", "b")) for n in range(10)]
    listed = list_message(jobs)[0].jobs
    assert [j.uuid for j in listed] == [j.id for j in jobs]
    assert all(dict(j.environment) == jobs[0].spec.environment for j in listed)
    assert all(list(j.args) == ["a", "b"] and dict(j.secret_environment) == {"TOKEN": "***"}
               for j in listed)  # fmt: skip


def test_a_listing_of_big_jobs_fits_the_budget_and_keeps_every_job() -> None:
    budget = 8 * MIB
    jobs = [job(n, MIB - 1024, ("arg",)) for n in range(20)] + [job(99, 2000)]
    message, omitted = list_message(jobs, budget)
    assert omitted == 0
    assert message.ByteSize() <= budget
    listed = {j.uuid: j for j in message.jobs}
    assert list(listed) == [j.id for j in jobs]
    full = [uuid for uuid, entry in listed.items() if entry.environment]
    assert "job-00099" in full and 1 <= len(full) < len(jobs)
    slim = listed["job-00019"] if "job-00019" not in full else listed["job-00000"]
    assert not slim.environment and not slim.args and not slim.secret_environment
    assert slim.command == "echo" and slim.status == "SCHEDULED"


def test_the_default_budget_fits_a_default_client() -> None:
    jobs = [job(n, MIB - 1024) for n in range(80)]  # 80 MiB of environments
    assert list_message(jobs)[0].ByteSize() <= LIST_BUDGET_BYTES < 4 * MIB


def test_too_many_jobs_keep_every_unfinished_one_and_the_newest_finished() -> None:
    # ~120 bytes each, as a job with a uuid, times and a short name is
    finished = [
        job(n, 0, status=JobStatus.COMPLETED, ended_at=1000.0 + n, name="x" * 100)
        for n in range(30_000)
    ]
    running = [job(30_000 + n, 0, status=JobStatus.RUNNING) for n in range(50)]
    # The oldest job still runs: it is listed however old it is.
    jobs = [job(0, 0, status=JobStatus.QUEUED), *finished[1:], *running]
    message, omitted = list_message(jobs)
    assert message.ByteSize() <= LIST_BUDGET_BYTES
    listed = [j.uuid for j in message.jobs]
    assert omitted > 0 and len(listed) + omitted == len(jobs)
    assert listed[0] == "job-00000" and listed[-50:] == [j.id for j in running]
    kept_finished = listed[1:-50]
    # the newest finished ones, in the table's order
    assert kept_finished == [j.id for j in finished[-len(kept_finished) :]]
