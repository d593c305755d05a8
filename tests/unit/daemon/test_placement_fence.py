"""The fence of a placing node: jobs that may be retried elsewhere are killed
once the node has not confirmed its own lease for 0.6 of the TTL, and not
before; the others are left alone."""

from __future__ import annotations

import asyncio

from joblet.daemon.placement import Fence
from joblet.state.backends.base import StateBackendError


class World:
    def __init__(self) -> None:
        self.now = 100.0
        self.lease: bool | None = True  # None: the store is away
        self.killed: list[str] = []

    async def own_lease(self) -> bool:
        if self.lease is None:
            raise StateBackendError("redis: connection refused")
        return self.lease

    async def kill(self, job_id: str) -> None:
        self.killed.append(job_id)


def test_retryable_jobs_are_killed_once_the_lease_is_unconfirmed_too_long() -> None:
    world = World()
    retryable = {"a", "b"}
    fence = Fence(world.own_lease, 6.0, retryable, world.kill, clock=lambda: world.now)

    async def play() -> list[list[str]]:
        out = [await fence.check()]
        world.lease = None  # the store away
        world.now += 5.9
        out.append(await fence.check())
        world.now += 0.2
        out.append(await fence.check())
        return out

    assert asyncio.run(play()) == [[], [], ["a", "b"]]
    assert world.killed == ["a", "b"] and retryable == set()


def test_a_lease_seen_again_resets_the_clock_and_a_lapsed_lease_counts_as_lost() -> None:
    world = World()
    retryable = {"a"}
    fence = Fence(world.own_lease, 6.0, retryable, world.kill, clock=lambda: world.now)

    async def play() -> list[list[str]]:
        world.lease = None
        world.now += 5.0
        out = [await fence.check()]
        world.lease = True  # renewed again in time
        out.append(await fence.check())
        world.lease = False  # the store answers, but this node's lease is gone
        world.now += 5.0
        out.append(await fence.check())
        world.now += 1.5
        out.append(await fence.check())
        return out

    assert asyncio.run(play()) == [[], [], [], ["a"]]


class Verifier:
    def __init__(self) -> None:
        self.calls = 0

    async def verify(self) -> None:
        self.calls += 1


def test_a_node_back_after_a_gap_asks_which_jobs_the_cluster_moved_on() -> None:
    """After a hang or a partition (no confirmed lease for 0.6 of the TTL,
    the clock running on meanwhile) the first confirmed lease asks at once;
    otherwise only every `verify_every_s`."""
    world = World()
    seen = Verifier()
    fence = Fence(world.own_lease, 6.0, set(), world.kill, clock=lambda: world.now,
                  verify=seen.verify, verify_every_s=10.0)  # fmt: skip

    async def play() -> list[int]:
        out = []
        for step in (1.0, 1.0, 1.0):  # confirmed in time: no question yet
            world.now += step
            await fence.check()
        out.append(seen.calls)
        world.now += 7.0  # a SIGSTOP of 7 s: the next check is the first after it
        await fence.check()
        out.append(seen.calls)
        world.now += 1.0
        await fence.check()
        out.append(seen.calls)
        world.now += 10.0  # the periodic question
        await fence.check()
        out.append(seen.calls)
        world.lease = None  # a partition: nothing asked while away ...
        for _ in range(8):
            world.now += 1.0
            await fence.check()
        out.append(seen.calls)
        world.lease = True  # ... and asked once back
        world.now += 1.0
        await fence.check()
        out.append(seen.calls)
        return out

    assert asyncio.run(play()) == [0, 1, 1, 2, 2, 3]
