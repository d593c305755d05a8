"""Group commit: concurrent calls share batches, each caller gets its own
outcome, and a failed batch fails every caller in it (never an answer for a
write that was not made)."""

import asyncio
from collections.abc import Sequence

import pytest

from joblet.cluster.batching import GroupCommit


async def settle() -> None:
    """Let the tasks started so far run up to their next wait."""
    for _ in range(5):
        await asyncio.sleep(0)


class Store:
    """A fake store: one round trip per batch, held open until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def flush(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [ValueError(f"odd {n}") if n % 2 else n * 10 for n in items]


async def test_calls_during_a_round_trip_go_out_together_as_the_next_batch() -> None:
    store = Store()
    commit = GroupCommit[int, int](store.flush)
    first = asyncio.ensure_future(commit.call(0))
    await settle()
    assert store.batches == [[0]]  # a lone call goes out at once
    rest = [asyncio.ensure_future(commit.call(n)) for n in (2, 4, 6)]
    await settle()
    assert store.batches == [[0]]  # waiting for the round trip under way
    store.release.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [20, 40, 60]
    assert store.batches == [[0], [2, 4, 6]]


async def test_each_caller_gets_its_own_items_outcome() -> None:
    store = Store()
    store.release.set()
    commit = GroupCommit[int, int](store.flush)
    results = await asyncio.gather(*(commit.call(n) for n in range(4)), return_exceptions=True)
    assert results[0] == 0 and results[2] == 20
    assert isinstance(results[1], ValueError) and str(results[1]) == "odd 1"
    assert isinstance(results[3], ValueError)


async def test_a_failed_batch_fails_every_caller_in_it() -> None:
    store = Store()
    store.fail = ConnectionError("store away")
    store.release.set()
    commit = GroupCommit[int, int](store.flush)
    results = await asyncio.gather(*(commit.call(n) for n in (2, 4)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    store.fail = None  # and the next call goes out again
    assert await commit.call(8) == 80


async def test_batches_are_bounded() -> None:
    store = Store()
    store.release.set()
    commit = GroupCommit[int, int](store.flush, max_batch=3)
    await asyncio.gather(*(commit.call(n * 2) for n in range(7)))
    assert [len(b) for b in store.batches] == [3, 3, 1]


async def test_a_caller_that_goes_away_leaves_the_others_their_answers() -> None:
    store = Store()
    commit = GroupCommit[int, int](store.flush)
    gone = asyncio.ensure_future(commit.call(2))
    stays = asyncio.ensure_future(commit.call(4))
    await settle()
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    store.release.set()
    assert await stays == 40
