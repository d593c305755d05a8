import pytest

from joblet.persist.archive.cloudwatch_batches import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    Event,
    batches,
    events_of,
)
from joblet.persist.archive.cloudwatch_config import parse_cloudwatch


def test_batches_stay_within_the_service_limits_in_order() -> None:
    many = [Event(i, "x") for i in range(25_000)]
    cut = list(batches(many))
    assert [len(b) for b in cut] == [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 5_000]
    assert [e for b in cut for e in b] == many
    big = [Event(1, "y" * 100_000) for _ in range(25)]
    cut = list(batches(big))
    assert all(sum(e.size for e in b) <= MAX_BATCH_BYTES for b in cut) and len(cut) == 3
    spread = [Event(0, "a"), Event(25 * 3600 * 1000, "b")]
    assert len(list(batches(spread))) == 2  # a batch spans at most 24 h


def test_a_long_record_becomes_several_events_none_too_big() -> None:
    text = ("é" * 200_000 + "\n").encode()
    events = list(events_of(5_000_000, text))
    assert len(events) > 1 and all(len(e.message.encode()) <= MAX_EVENT_BYTES for e in events)
    assert "".join(e.message for e in events).encode() == text
    assert {e.timestamp_ms for e in events} == {5}
    assert list(events_of(1, b"")) == []
    assert next(events_of(1, b"\xff ok")).message == "\ufffd ok"


def test_config() -> None:
    assert parse_cloudwatch(None) is None and parse_cloudwatch({}) is None
    config = parse_cloudwatch({"logGroup": "/joblet/prod", "flushInterval": "200ms"})
    assert config is not None and config.flush_interval_s == 0.2
    with pytest.raises(ValueError, match="characters"):
        parse_cloudwatch({"logGroup": "bad group!"})
    with pytest.raises(ValueError, match="go together"):
        parse_cloudwatch({"logGroup": "g", "accessKeyId": "a"})
