"""Which running jobs a preemption stops: the fewest, lowest first, only
preemptible ones of strictly lower priority, never for a job that could not
start anyway."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from joblet.jobs.victims import Running, choose_victims, slots_needed

running_jobs = st.lists(
    st.builds(
        Running,
        job_id=st.uuids().map(str),
        priority=st.integers(-10, 10),
        preemptible=st.booleans(),
        started_at=st.integers(0, 100).map(float),
        leaving=st.booleans(),
    ),
    max_size=12,
    unique_by=lambda r: r.job_id,
)


@given(running_jobs, st.integers(-10, 10), st.integers(0, 5))
def test_victims_are_the_fewest_and_lowest_eligible_jobs(
    running: list[Running], priority: int, needed: int
) -> None:
    victims = choose_victims(priority, running, needed)
    eligible = [r for r in running if r.preemptible and not r.leaving and r.priority < priority]
    chosen = [r for r in running if r.job_id in victims]
    assert len(set(victims)) == len(victims)
    assert all(r in eligible for r in chosen)  # never non-preemptible, equal or higher
    if needed == 0 or len(eligible) < needed:
        assert victims == ()  # nobody is stopped when it cannot make room in full
    else:
        assert len(victims) == needed  # the fewest
        others = [r for r in eligible if r not in chosen]
        assert all(c.priority <= o.priority for c in chosen for o in others)  # the lowest


@given(running_jobs, st.integers(-10, 10), st.integers(1, 5))
def test_nothing_is_stopped_for_a_job_that_cannot_start(
    running: list[Running], priority: int, needed: int
) -> None:
    assert choose_victims(priority, running, needed, blocker="no GPUs on this node") == ()


def test_a_non_preemptible_job_is_never_chosen_however_low() -> None:
    running = [Running("keep", -1000, False, 1.0), Running("batch", 3, True, 2.0)]
    assert choose_victims(5, running, 1) == ("batch",)
    assert choose_victims(5, running, 2) == ()
    assert choose_victims(3, running, 1) == ()  # equal priority does not qualify


def test_among_equals_the_most_recently_started_goes_first() -> None:
    running = [Running("old", 0, True, 1.0), Running("new", 0, True, 9.0)]
    assert choose_victims(1, running, 1) == ("new",)


def test_slots_needed_counts_jobs_ahead_and_jobs_already_leaving() -> None:
    assert slots_needed(running=2, leaving=0, limit=2, ahead=0) == 1
    assert slots_needed(running=2, leaving=1, limit=2, ahead=0) == 0
    assert slots_needed(running=2, leaving=0, limit=2, ahead=2) == 3
    assert slots_needed(running=1, leaving=0, limit=2, ahead=0) == 0
    assert slots_needed(running=9, leaving=0, limit=0, ahead=0) == 0  # no limit
