"""Fan-out of live data: one upstream per job, offsets that resume exactly,
slow readers coalesced without holding the upstream back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from joblet.ui.feeds import FeedHub, LogFeed, SampleFeed, Tail, parse_event_id


def test_tail_keeps_the_last_lines_with_absolute_offsets() -> None:
    tail = Tail(max_lines=3)
    tail.append(b"1\n2\n3\n4\n5")
    # three whole lines and the one still being written
    assert tail.base == 2 and bytes(tail.data) == b"2\n3\n4\n5"
    assert tail.read(0, whole_lines=True) == (2, b"2\n3\n4\n")  # older: from the oldest kept
    assert tail.read(6, whole_lines=False) == (6, b"4\n5")
    assert tail.end == 9


def test_event_ids_resume_only_within_one_generation() -> None:
    assert parse_event_id("ab12:300", "ab12") == 300
    assert parse_event_id("ffff:300", "ab12") == 0
    assert parse_event_id("ab12:x", "ab12") == 0
    assert parse_event_id(None, "ab12") == 0


async def test_a_reader_resuming_at_its_offset_gets_no_gap_and_no_duplicate() -> None:
    gate = asyncio.Queue[bytes | None]()

    async def upstream() -> AsyncIterator[bytes]:
        while (chunk := await gate.get()) is not None:
            yield chunk

    feed = LogFeed(upstream)
    task = asyncio.create_task(feed.run())
    await gate.put(b"one\ntw")
    start, piece = await feed.read(0, timeout=2)
    assert (start, piece) == (0, b"one\n")  # never half a line while it runs
    await gate.put(b"o\nthree\n")
    start, rest = await feed.read(start + len(piece), timeout=2)
    assert (start, rest) == (4, b"two\nthree\n")
    await gate.put(None)
    await task
    assert feed.done and (await feed.read(14, timeout=1)) == (14, b"")


async def test_a_slow_reader_gets_everything_that_piled_up_in_one_read() -> None:
    async def upstream() -> AsyncIterator[object]:
        for n in range(50):
            yield n

    feed = SampleFeed(upstream)
    await feed.run()  # the upstream never waited for the reader
    seen, samples = await feed.read(10, timeout=1)
    assert (seen, samples) == (50, list(range(10, 50)))


async def test_many_followers_share_one_upstream_and_it_closes_after_the_last() -> None:
    opened = 0

    async def upstream() -> AsyncIterator[bytes]:
        nonlocal opened
        opened += 1
        yield b"x\n"
        await asyncio.sleep(3600)

    hub = FeedHub(linger_s=0.05)
    async with (
        hub.follow("log:j", lambda: LogFeed(upstream)) as a,
        hub.follow("log:j", lambda: LogFeed(upstream)) as b,
    ):
        assert a is b
        assert (await a.read(0, timeout=2))[1] == b"x\n"
    assert (opened, hub.upstreams_opened, len(hub)) == (1, 1, 1)
    for _ in range(100):
        if not len(hub):
            break
        await asyncio.sleep(0.02)
    assert len(hub) == 0
    await hub.aclose()
