"""The order of every wait: effective priority, then submission time.

Pure code. A job's effective priority is its priority plus one step for each
`aging_s` seconds it has waited (continuously: half a step after half the
period), so a low one waiting long enough passes any stream of higher ones
arriving later. Because every waiting job ages at the same rate, the order
of two waiting jobs never changes while they wait: each gets a fixed rank
(priority - queued_at / aging_s) when it is queued, and the queue is a heap
of ranks. A decision costs O(log n), whatever the number of waiting jobs.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

PRIORITY_MIN = -1000
PRIORITY_MAX = 1000
DEFAULT_AGING_S = 60.0  # one step per minute of waiting

# (-rank, submission time, id): the smallest comes first.
Key = tuple[float, float, str]


def effective_priority(priority: int, waited_s: float, aging_s: float) -> float:
    """`priority` after waiting `waited_s` seconds (aging_s <= 0: no aging)."""
    if aging_s <= 0:
        return float(priority)
    return priority + max(0.0, waited_s) / aging_s


def order_key(
    job_id: str, priority: int, queued_at: float, created_at: float, aging_s: float
) -> Key:
    """Where a job waiting since `queued_at` stands: higher effective priority
    first, then the earlier submission, then the id (a total order)."""
    rank = priority - queued_at / aging_s if aging_s > 0 else float(priority)
    return (-rank, created_at, job_id)


@dataclass(frozen=True)
class Waiting:
    """A job as the queue sees it."""

    job_id: str
    priority: int
    queued_at: float
    created_at: float


class WaitQueue:
    """Jobs waiting for a slot, best first. Removal is lazy: a removed or
    re-queued job's old heap entry is skipped when it comes up."""

    def __init__(self, aging_s: float = DEFAULT_AGING_S) -> None:
        self.aging_s = aging_s
        self._keys: dict[str, Key] = {}
        self._heap: list[Key] = []

    def push(self, job: Waiting) -> None:
        key = self.key(job)
        self._keys[job.job_id] = key
        heapq.heappush(self._heap, key)

    def remove(self, job_id: str) -> None:
        if self._keys.pop(job_id, None) is not None and len(self._heap) > 2 * len(self._keys) + 64:
            self._heap = sorted(self._keys.values())  # a sorted list is a heap

    def peek(self) -> str | None:
        self._drop_stale()
        return self._heap[0][2] if self._heap else None

    def pop(self) -> str | None:
        self._drop_stale()
        if not self._heap:
            return None
        key = heapq.heappop(self._heap)
        del self._keys[key[2]]
        return key[2]

    def key(self, job: Waiting) -> Key:
        return order_key(job.job_id, job.priority, job.queued_at, job.created_at, self.aging_s)

    def count_ahead(self, job: Waiting, at_most: int | None = None) -> int:
        """How many waiting jobs come before `job`, counting no further than
        `at_most`. In a heap a node's children never come before it, so only
        the entries ahead (and stale ones among them) are visited."""
        key = self.key(job)
        heap, keys = self._heap, self._keys
        count, todo = 0, [0] if heap else []
        while todo:
            index = todo.pop()
            entry = heap[index]
            if entry >= key:
                continue  # nor anything below it
            if keys.get(entry[2]) == entry and entry[2] != job.job_id:
                count += 1
                if at_most is not None and count >= at_most:
                    return count
            child = 2 * index + 1
            todo.extend(c for c in (child, child + 1) if c < len(heap))
        return count

    def ordered(self) -> list[str]:
        """Every waiting job, best first."""
        return [key[2] for key in sorted(self._keys.values())]

    def _drop_stale(self) -> None:
        heap, keys = self._heap, self._keys
        while heap and keys.get(heap[0][2]) != heap[0]:
            heapq.heappop(heap)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)


def best_first(jobs: Iterable[Waiting], aging_s: float) -> list[Waiting]:
    """`jobs` in the order they would leave a queue (jobs becoming ready at
    the same moment: dependents, schedules falling due together)."""
    return sorted(
        jobs,
        key=lambda j: order_key(j.job_id, j.priority, j.queued_at, j.created_at, aging_s),
    )
