"""The fence of a placing node: jobs that may be retried elsewhere are killed
once the node has not confirmed its own lease for 0.6 of the TTL, and not
before; the others are left alone."""

from __future__ import annotations

import asyncio
from typing import cast

from joblet.cluster.queue import PlacementQueue
from joblet.daemon.placement import FENCED_REASON, Fence, Tokens
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.state.backends.base import StateBackendError


class World:
    def __init__(self) -> None:
        self.now = 100.0
        self.lease: bool | None = True  # None: the store is away
        self.age = 0.0  # seconds since the lease was renewed
        self.killed: list[str] = []

    async def own_lease(self) -> float | None:
        if self.lease is None:
            raise StateBackendError("redis: connection refused")
        return self.age if self.lease else None

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


class Launcher:
    """What the launcher was told of the fence: (until, jobs) per call."""

    def __init__(self) -> None:
        self.told: list[tuple[float, list[str]]] = []
        self.away = False

    async def fence(self, until: float, job_ids: list[str]) -> None:
        if self.away:
            raise OSError("the launcher closed the connection")
        self.told.append((until, job_ids))


def test_the_launcher_holds_the_same_deadline_renewed_at_each_confirmed_lease() -> None:
    """It kills the retryable jobs at 0.6 of the TTL after the last confirmed
    lease (while the daemon hangs, say); told only what changed, disarmed
    once no retryable job is left, and told again after it was away."""
    world, launcher = World(), Launcher()
    retryable: set[str] = set()
    fence = Fence(world.own_lease, 6.0, retryable, world.kill, clock=lambda: world.now,
                  launcher=launcher.fence)  # fmt: skip

    async def play() -> None:
        await fence.check()  # nothing retryable: nothing to tell
        retryable.add("b")
        retryable.add("a")
        await fence.tell_launcher()  # a retryable job started: told at once
        await fence.tell_launcher()  # nothing changed: not again
        world.now += 1.0
        await fence.check()
        world.lease = None
        world.now += 1.0
        await fence.check()  # unconfirmed: the deadline stands
        world.lease = True
        launcher.away = True
        world.now += 1.0
        await fence.check()
        launcher.away = False
        world.now += 1.0
        retryable.discard("a")
        world.age = 0.5  # renewed half a second ago: the deadline counts from then
        await fence.check()
        retryable.clear()
        await fence.tell_launcher()
        await fence.tell_launcher()

    asyncio.run(play())
    assert launcher.told == [
        (106.0, ["a", "b"]),
        (107.0, ["a", "b"]),
        (109.5, ["b"]),
        (109.5, []),
    ]


class Queue:
    def __init__(self) -> None:
        self.given_back: list[tuple[str, int]] = []
        self.finished: list[tuple[str, int, str]] = []

    async def give_back(self, job_id: str, token: int) -> bool:
        self.given_back.append((job_id, token))
        return True

    async def finish(self, job_id: str, token: int, state: str, reason: str) -> bool:
        self.finished.append((job_id, token, state))
        return True


def test_a_job_the_launchers_fence_killed_goes_back_to_the_queue() -> None:
    """Killed by the launcher while the daemon hung: its end says the fence
    stopped it, and the job is queued again rather than ended."""
    queue = Queue()
    tokens = Tokens(cast("PlacementQueue", queue))
    spec = JobSpec(command="sleep")

    async def play() -> None:
        tokens.hold("fenced", 3, retry=True)
        tokens.hold("plain", 4, retry=True)
        ended = Job("fenced", spec, JobStatus.STOPPED, ended_at=1.0, end_reason=FENCED_REASON)
        tokens.changed(ended)
        tokens.changed(Job("plain", spec, JobStatus.COMPLETED, ended_at=1.0))
        await asyncio.sleep(0.05)

    asyncio.run(play())
    assert queue.given_back == [("fenced", 3)]
    assert queue.finished == [("plain", 4, "COMPLETED")]
