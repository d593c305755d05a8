"""A placing node reads its streams only while it has room: a busy node
stops pulling, and it never asks for more entries than its free slots."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from joblet.api import joblet_pb2 as pb
from joblet.cluster.queue import Claim, Entry, PlacementQueue
from joblet.daemon.placement import Tokens, Worker


class Queue:
    def __init__(self) -> None:
        self.reads: list[int] = []

    async def ensure_groups(self, streams: list[str]) -> None:
        pass

    async def stale(self, streams: list[str], idle_ms: int, count: int) -> list[Entry]:
        return []

    async def read(self, streams: list[str], count: int) -> list[Entry]:
        self.reads.append(count)
        return []


def worker(queue: Queue, free: list[int]) -> Worker:
    async def launch(job_id: str, request: Any) -> Any:
        raise AssertionError("nothing to launch")

    fake = cast("PlacementQueue", queue)
    return Worker(fake, ["any"], lambda: free[0], launch,
                  tokens=Tokens(fake), registry_prefix="p:")  # fmt: skip


def test_a_node_without_free_slots_reads_nothing() -> None:
    queue, free = Queue(), [0]
    w = worker(queue, free)

    async def play() -> list[bool]:
        out = [await w.turn()]
        free[0] = 3
        out.append(await w.turn())
        free[0] = -1  # no limit: a batch at a time
        out.append(await w.turn())
        return out

    assert asyncio.run(play()) == [False, True, True]
    assert queue.reads == [3, 64]


class LapsedQueue(Queue):
    """Claims its entry, then refuses the start: this node's lease lapsed."""

    def __init__(self) -> None:
        super().__init__()
        self.given_back: list[tuple[str, int]] = []

    async def claim(self, entry: Entry) -> Claim:
        return Claim(entry.job_id, 7, pb.RunJobRequest(command="true").SerializeToString())

    async def start(self, claim: Claim, registry_prefix: str) -> int:
        return -1

    async def give_back(self, job_id: str, token: int) -> bool:
        self.given_back.append((job_id, token))
        return True


def test_a_claim_refused_its_start_goes_back_to_its_stream() -> None:
    """Not left CLAIMED by a node that may renew its lease before the
    janitor looks at it (it would stay so, run by no one)."""
    queue = LapsedQueue()

    async def play() -> bool:
        took = await worker(queue, [3])._take(Entry("s", "1-0", "job-a"))
        await asyncio.sleep(0.05)
        return took

    assert asyncio.run(play()) is False
    assert queue.given_back == [("job-a", 7)]
