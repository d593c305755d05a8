"""The queue's order: effective priority (priority plus aging), then
submission time; checked against a brute-force model and for starvation."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from joblet.jobs.priority import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    Waiting,
    WaitQueue,
    best_first,
    effective_priority,
)

priorities = st.integers(PRIORITY_MIN, PRIORITY_MAX)
# Whole seconds and power-of-two aging periods keep every rank exact.
times = st.integers(0, 10_000)
agings = st.sampled_from([0.0, 1.0, 2.0, 64.0])


@st.composite
def waiting_jobs(draw: st.DrawFn, max_size: int = 40) -> list[Waiting]:
    specs = draw(st.lists(st.tuples(priorities, times, times), max_size=max_size))
    return [
        Waiting(f"job-{index:03d}", priority, queued_at=max(created, q), created_at=created)
        for index, (priority, created, q) in enumerate(specs)
    ]


def model_best(jobs: list[Waiting], now: float, aging_s: float) -> Waiting:
    """The job a queue must give next, worked out from the definition."""
    return min(
        jobs,
        key=lambda j: (
            -effective_priority(j.priority, now - j.queued_at, aging_s),
            j.created_at,
            j.job_id,
        ),
    )


@given(waiting_jobs())
def test_without_aging_the_order_is_priority_then_submission_time(jobs: list[Waiting]) -> None:
    queue = WaitQueue(aging_s=0)
    for job in jobs:
        queue.push(job)
    popped = [queue.pop() for _ in jobs]
    expected = sorted(jobs, key=lambda j: (-j.priority, j.created_at, j.job_id))
    assert popped == [j.job_id for j in expected]
    assert queue.pop() is None


@given(waiting_jobs(), agings, st.data())
def test_the_head_is_the_best_by_effective_priority_at_any_time(
    jobs: list[Waiting], aging_s: float, data: st.DataObject
) -> None:
    queue = WaitQueue(aging_s)
    for job in jobs:
        queue.push(job)
    left = list(jobs)
    now = float(max((j.queued_at for j in jobs), default=0))
    while left:
        # Removals in between, as cancels do.
        if data.draw(st.booleans()):
            gone = data.draw(st.sampled_from(left))
            queue.remove(gone.job_id)
            left.remove(gone)
            continue
        now += data.draw(st.integers(0, 500))
        best = model_best(left, now, aging_s)
        assert queue.peek() == best.job_id
        assert queue.pop() == best.job_id
        left.remove(best)
    assert len(queue) == 0 and queue.peek() is None


@settings(max_examples=60)
@given(
    low=priorities,
    stream=st.lists(priorities, min_size=1, max_size=5),
    aging_s=st.sampled_from([1.0, 2.0, 64.0]),
    step=st.integers(1, 4000),
)
def test_with_aging_a_waiting_job_reaches_the_head_despite_a_stream_of_higher_ones(
    low: int, stream: list[int], aging_s: float, step: int
) -> None:
    """One job is served per `step` seconds and one arrives per step, with the
    priorities of `stream` over and over: the low job is served in bounded time."""
    queue = WaitQueue(aging_s)
    queue.push(Waiting("low", low, queued_at=0, created_at=0))
    # Once arrivals are (PRIORITY_MAX - low) steps of aging later than it,
    # none of them can pass it; those before are finitely many.
    passing = math.ceil((PRIORITY_MAX - low) * aging_s / step) + 1
    for n in range(1, 2 * passing + 3):
        now = n * step
        queue.push(Waiting(f"new-{n:06d}", stream[n % len(stream)], now, now))
        if queue.pop() == "low":
            return
    raise AssertionError("the low-priority job never reached the head")


def test_without_aging_a_stream_of_higher_ones_keeps_it_waiting() -> None:
    """What aging is for: with it off, a steady stream starves the low job."""
    queue = WaitQueue(aging_s=0)
    queue.push(Waiting("low", -5, 0, 0))
    for n in range(1, 1000):
        queue.push(Waiting(f"new-{n}", 0, n, n))
        assert queue.pop() != "low"


def test_aging_counts_from_when_the_job_began_to_wait() -> None:
    assert effective_priority(-5, 0, 60) == -5
    assert effective_priority(-5, 300, 60) == 0
    assert effective_priority(-5, 330, 60) == 0.5
    assert effective_priority(-5, 10_000, 0) == -5  # off
    queue = WaitQueue(60)
    queue.push(Waiting("old-low", -5, queued_at=0, created_at=0))
    queue.push(Waiting("new-zero", 0, queued_at=301, created_at=301))
    assert queue.pop() == "old-low"  # waited over 5 minutes: above 0 now


def test_jobs_ready_together_are_ordered_like_the_queue() -> None:
    jobs = [Waiting("a", 0, 5, 5), Waiting("b", 5, 6, 6), Waiting("c", -5, 7, 7)]
    jobs.append(Waiting("d", 5, 8, 8))
    assert [j.job_id for j in best_first(jobs, 60)] == ["b", "d", "a", "c"]


def test_a_requeued_job_takes_its_new_place_and_the_old_entry_is_skipped() -> None:
    queue = WaitQueue(0)
    queue.push(Waiting("x", 0, 1, 1))
    queue.push(Waiting("y", 1, 2, 2))
    queue.remove("x")
    queue.push(Waiting("x", 9, 3, 1))
    assert queue.ordered() == ["x", "y"]
    assert queue.count_ahead(Waiting("z", 5, 4, 4)) == 1
    assert [queue.pop(), queue.pop(), queue.pop()] == ["x", "y", None]


def test_many_removals_keep_the_heap_small() -> None:
    queue = WaitQueue(60)
    for n in range(1000):
        queue.push(Waiting(f"j{n}", 0, n, n))
    for n in range(999):
        queue.remove(f"j{n}")
    assert len(queue._heap) < 200
    assert queue.pop() == "j999"


@given(waiting_jobs(max_size=60), agings, st.data())
def test_count_ahead_is_the_number_of_better_waiting_jobs(
    jobs: list[Waiting], aging_s: float, data: st.DataObject
) -> None:
    queue = WaitQueue(aging_s)
    for job in jobs:
        queue.push(job)
    for gone in data.draw(st.lists(st.sampled_from(jobs), max_size=10)) if jobs else []:
        queue.remove(gone.job_id)  # stale heap entries must not count
    left = [j for j in jobs if j.job_id in queue]
    new = Waiting("new", data.draw(priorities), data.draw(times), data.draw(times))
    expected = sum(1 for j in left if queue.key(j) < queue.key(new))
    assert queue.count_ahead(new) == expected
    cap = data.draw(st.integers(1, 5))
    assert queue.count_ahead(new, at_most=cap) == min(expected, cap)
