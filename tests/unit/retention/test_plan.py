"""Which finished jobs the retention plan collects."""

from __future__ import annotations

from joblet.config.model import JobRetention
from joblet.retention.plan import JobFacts, plan

DAY = 86400.0
NOW = 100 * DAY


def ids(units: list) -> list[str]:  # type: ignore[type-arg]
    return [job_id for unit in units for job_id in unit.ids]


def test_jobs_past_the_age_go_oldest_first_and_young_ones_stay() -> None:
    facts = [
        JobFacts("young", True, NOW - 3600),
        JobFacts("old2", True, NOW - 9 * DAY),
        JobFacts("old1", True, NOW - 10 * DAY),
    ]
    policy = JobRetention(max_age_s=7 * DAY, max_jobs=0)
    assert ids(plan(facts, policy, NOW)) == ["old1", "old2"]


def test_the_count_keeps_the_newest_finished_and_counts_jobs_that_cannot_go() -> None:
    facts = [JobFacts(f"j{n}", True, NOW - n) for n in range(10)]
    facts.append(JobFacts("running", False, 0.0))
    facts.append(JobFacts("wf-a", True, NOW - 100, group="wf", group_open=True))
    policy = JobRetention(max_age_s=0, max_jobs=5)
    # 11 finished (the open workflow's job counts but stays): 6 must go.
    assert ids(plan(facts, policy, NOW)) == ["j9", "j8", "j7", "j6", "j5", "j4"]


def test_running_waiting_and_open_workflow_jobs_are_never_collected() -> None:
    facts = [
        JobFacts("running", False, 0.0),
        JobFacts("scheduled", False, 0.0),
        JobFacts("wf-done", True, 1.0, group="open", group_open=True),
        JobFacts("wf-run", False, 0.0, group="open", group_open=True),
    ]
    assert ids(plan(facts, JobRetention(max_age_s=1, max_jobs=1), NOW)) == []


def test_a_finished_workflow_goes_whole_by_its_last_end() -> None:
    facts = [
        JobFacts("a", True, NOW - 10 * DAY, group="wf"),
        JobFacts("b", True, NOW - 1 * DAY, group="wf"),
        JobFacts("c", True, NOW - 8 * DAY),
    ]
    policy = JobRetention(max_age_s=7 * DAY, max_jobs=0)
    assert ids(plan(facts, policy, NOW)) == ["c"]  # b ended a day ago: wf stays
    policy = JobRetention(max_age_s=0.5 * DAY, max_jobs=0)
    assert ids(plan(facts, policy, NOW)) == ["c", "a", "b"]


def test_both_limits_off_collects_nothing() -> None:
    facts = [JobFacts("old", True, 0.0)]
    assert plan(facts, JobRetention(max_age_s=0, max_jobs=0), NOW) == []
