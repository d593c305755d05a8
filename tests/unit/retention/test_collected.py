"""The memory of collected jobs: answers, bounds, records."""

from __future__ import annotations

import uuid

import grpc
import pytest

from joblet.retention.collected import (
    CollectedIds,
    JobCollected,
    RecordError,
    decode,
    encode,
)

DAY = 86400.0


def new_id() -> str:
    return str(uuid.uuid4())


def test_a_collected_id_is_answered_with_when_and_until_when() -> None:
    memory = CollectedIds(history_age_s=7 * DAY)
    job = new_id()
    memory.new_batch(1_000_000.0, [(job, 999_000.0), (new_id(), 999_500.0)])
    gone = memory.lookup(job)
    assert gone is not None
    assert (gone.at, gone.history_until) == (1_000_000.0, 999_000.0 + 7 * DAY)
    error = JobCollected(gone)
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert str(error) == (
        f"job {job} was collected at 1970-01-12T13:46:40Z (joblet.jobRetention);"
        " its history is kept until 1970-01-19T13:30:00Z"
    )
    assert memory.lookup(new_id()) is None
    assert memory.lookup(job[:8]) is None  # prefixes are never remembered


def test_without_an_age_limit_the_answer_says_so() -> None:
    memory = CollectedIds(history_age_s=0)
    job = new_id()
    memory.new_batch(10.0, [(job, 5.0)])
    gone = memory.lookup(job)
    assert gone is not None and gone.history_until == 0
    assert "kept while persist has room" in str(JobCollected(gone))


def test_batches_go_when_persist_dropped_them_or_over_the_limit() -> None:
    memory = CollectedIds(history_age_s=10.0, limit=4)
    first = memory.new_batch(100.0, [(new_id(), 50.0)])
    second = memory.new_batch(200.0, [(new_id(), 195.0), (new_id(), 196.0)])
    assert memory.expired(now=60.0) == []
    assert memory.expired(now=70.0) == [first]  # 50 + 10 < 70
    third = memory.new_batch(300.0, [(new_id(), 299.0) for _ in range(3)])
    assert len(memory) == 5
    assert memory.expired(now=200.0) == [second]  # the oldest, over the limit
    assert len(memory) == 3 and memory.lookup(third.ids[0]) is not None


def test_a_batch_survives_its_record_and_a_bad_record_is_refused() -> None:
    memory = CollectedIds(history_age_s=DAY)
    batch = memory.new_batch(100.0, [(new_id(), 90.0)])
    again = CollectedIds(history_age_s=DAY)
    again.load([decode(batch.key, encode(batch))])
    assert again.lookup(batch.ids[0]) == memory.lookup(batch.ids[0])
    with pytest.raises(RecordError, match="unreadable record collected:x"):
        decode("collected:x", b'{"at": 1}')
