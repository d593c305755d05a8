import pytest

from joblet.state.buffer import BufferProtocolError, EventBuffer


def ids(events: list) -> list[tuple[str, bytes | None]]:  # type: ignore[type-arg]
    return [(e.job_id, e.record) for e in events]


def test_events_go_out_in_order_within_the_window() -> None:
    buffer = EventBuffer(100)
    for i in range(5):
        buffer.add(f"j{i}", b"r")
    first = buffer.take(window=3)
    assert [e.job_id for e in first] == ["j0", "j1", "j2"]
    assert buffer.take(window=3) == []
    buffer.ack(first[0].seq)
    assert [e.job_id for e in buffer.take(window=3)] == ["j3"]
    assert len(buffer) == 4


def test_acks_must_match_the_oldest_event_in_flight() -> None:
    buffer = EventBuffer(10)
    buffer.add("a", b"1")
    buffer.add("b", b"2")
    sent = buffer.take(window=10)
    with pytest.raises(BufferProtocolError):
        buffer.ack(sent[1].seq)
    buffer.ack(sent[0].seq)
    buffer.ack(sent[1].seq)
    with pytest.raises(BufferProtocolError):
        buffer.ack(99)
    assert len(buffer) == 0


def test_lost_connection_replays_in_flight_events_first_in_order() -> None:
    buffer = EventBuffer(10)
    for name in "abcd":
        buffer.add(name, name.encode())
    buffer.take(window=2)
    assert buffer.requeue_inflight() == 2
    assert [e.job_id for e in buffer.take(window=10)] == ["a", "b", "c", "d"]


def test_full_buffer_coalesces_to_the_last_event_per_job() -> None:
    buffer = EventBuffer(4)
    buffer.add("a", b"a1")
    buffer.add("b", b"b1")
    buffer.add("a", b"a2")
    buffer.add("b", None)  # delete
    result = buffer.add("c", b"c1")
    assert result.coalesced == 2
    assert result.dropped is None
    assert ids(buffer.pending()) == [("a", b"a2"), ("b", None), ("c", b"c1")]
    assert buffer.dropped == 0


def test_in_flight_events_are_never_coalesced_away() -> None:
    buffer = EventBuffer(3)
    buffer.add("a", b"a1")
    buffer.take(window=1)
    buffer.add("a", b"a2")
    buffer.add("a", b"a3")
    buffer.add("a", b"a4")
    assert ids(buffer.pending()) == [("a", b"a1"), ("a", b"a3"), ("a", b"a4")]


def test_overflow_of_distinct_jobs_drops_the_oldest_and_counts() -> None:
    buffer = EventBuffer(3)
    for name in "abc":
        buffer.add(name, b"x")
    result = buffer.add("d", b"x")
    assert result.dropped is not None and result.dropped.job_id == "a"
    assert buffer.dropped == 1
    assert [e.job_id for e in buffer.pending()] == ["b", "c", "d"]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        EventBuffer(0)


def test_holds_through_follows_the_oldest_unacknowledged_event() -> None:
    buffer = EventBuffer(10)
    assert not buffer.holds_through(buffer.last_seq)
    buffer.add("a", b"1")
    target = buffer.add("b", b"2").event.seq
    assert buffer.last_seq == target
    sent = buffer.take(window=1)
    buffer.add("c", b"3")  # a later event is not waited for
    assert buffer.holds_through(target)
    buffer.ack(sent[0].seq)
    assert buffer.holds_through(target)  # b is not sent yet
    buffer.requeue_inflight()
    buffer.ack_through(buffer.take(window=1)[0].seq)
    assert not buffer.holds_through(target)
    assert buffer.holds_through(target + 1)
