"""ListJobs stays under the send limit however big the jobs' environments:
every job listed, the biggest without their environment and arguments."""

from __future__ import annotations

from joblet.daemon.job_listing import LIST_BUDGET_BYTES, list_message
from joblet.jobs.model import Job, JobSpec, JobStatus

MIB = 1024 * 1024


def job(n: int, env_bytes: int, args: tuple[str, ...] = ()) -> Job:
    environment = {f"V{i}": "x" * (env_bytes // 8) for i in range(8)} if env_bytes else {}
    spec = JobSpec(
        command="echo", args=args, environment=environment, secret_environment={"TOKEN": "t"}
    )
    return Job(id=f"job-{n:04d}", spec=spec, status=JobStatus.SCHEDULED)


def test_small_listings_are_whole() -> None:
    jobs = [job(n, 1000, ("a", "b")) for n in range(10)]
    listed = list_message(jobs).jobs
    assert [j.uuid for j in listed] == [j.id for j in jobs]
    assert all(dict(j.environment) == jobs[0].spec.environment for j in listed)
    assert all(list(j.args) == ["a", "b"] and dict(j.secret_environment) == {"TOKEN": "***"}
               for j in listed)  # fmt: skip


def test_a_listing_of_big_jobs_fits_the_budget_and_keeps_every_job() -> None:
    budget = 8 * MIB
    jobs = [job(n, MIB - 1024, ("arg",)) for n in range(20)] + [job(99, 2000)]
    message = list_message(jobs, budget)
    assert message.ByteSize() <= budget
    listed = {j.uuid: j for j in message.jobs}
    assert list(listed) == [j.id for j in jobs]
    full = [uuid for uuid, entry in listed.items() if entry.environment]
    assert "job-0099" in full and 1 <= len(full) < len(jobs)
    slim = listed["job-0019"] if "job-0019" not in full else listed["job-0000"]
    assert not slim.environment and not slim.args and not slim.secret_environment
    assert slim.command == "echo" and slim.status == "SCHEDULED"


def test_the_default_budget_fits_a_default_client() -> None:
    jobs = [job(n, MIB - 1024) for n in range(80)]  # 80 MiB of environments
    assert list_message(jobs).ByteSize() <= LIST_BUDGET_BYTES < 4 * MIB
