"""The daemon's bounded, ordered buffer of state events: pure, no I/O.

Events move `unsent -> inflight -> acknowledged (gone)`. When a connection to
the helper is lost, everything in flight goes back to the front of `unsent`, in
order, to be replayed. Every put carries a job's full record and a delete is
final, so only the *last* event per job decides what the store ends up with;
when the buffer is full it therefore first coalesces the unsent events to the
last one per job (keeping their order), which loses nothing. Only when even the
coalesced buffer is full (more distinct jobs waiting than the bound) is the
oldest unsent event dropped, and the caller is told so it can log and count it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class StateEvent:
    seq: int
    job_id: str
    record: bytes | None  # None: delete the job
    ttl_s: float = 0.0  # 0: the backend's default


class BufferProtocolError(Exception):
    """An ack that does not match the oldest event in flight."""


@dataclass(frozen=True)
class AddResult:
    event: StateEvent
    coalesced: int = 0  # older events made redundant by later ones and removed
    dropped: StateEvent | None = None  # lost: the buffer overflowed even when coalesced


class EventBuffer:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._unsent: deque[StateEvent] = deque()
        self._inflight: deque[StateEvent] = deque()
        self._next_seq = 1
        self.dropped = 0
        self.coalesced = 0

    def __len__(self) -> int:
        return len(self._unsent) + len(self._inflight)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def unsent(self) -> int:
        return len(self._unsent)

    def add(self, job_id: str, record: bytes | None, ttl_s: float = 0.0) -> AddResult:
        """Queue an event at the back; make room first when full (module doc)."""
        coalesced = 0
        dropped = None
        if len(self) >= self.capacity:
            coalesced = self._coalesce()
        if len(self) >= self.capacity and self._unsent:
            dropped = self._unsent.popleft()
            self.dropped += 1
        event = StateEvent(self._next_seq, job_id, record, ttl_s)
        self._next_seq += 1
        self._unsent.append(event)
        return AddResult(event, coalesced, dropped)

    def take(self, window: int) -> list[StateEvent]:
        """The next unsent events to send, keeping at most `window` in flight."""
        batch: list[StateEvent] = []
        while self._unsent and len(self._inflight) < window:
            event = self._unsent.popleft()
            self._inflight.append(event)
            batch.append(event)
        return batch

    def ack(self, seq: int) -> StateEvent:
        """The helper stored event `seq`; acks arrive in the order events were sent."""
        if not self._inflight or self._inflight[0].seq != seq:
            expected = self._inflight[0].seq if self._inflight else None
            raise BufferProtocolError(f"ack for event {seq}, expected {expected}")
        return self._inflight.popleft()

    def ack_through(self, seq: int) -> int:
        """The helper stored every event in flight up to and including `seq` (one
        ack answers a whole batch); returns how many were acknowledged."""
        if not self._inflight or self._inflight[0].seq > seq or self._inflight[-1].seq < seq:
            expected = self._inflight[0].seq if self._inflight else None
            raise BufferProtocolError(f"ack for event {seq}, expected {expected} or later")
        last, count = self._inflight.popleft(), 1
        while self._inflight and self._inflight[0].seq <= seq:
            last, count = self._inflight.popleft(), count + 1
        if last.seq != seq:  # acks fall on batch boundaries, never between them
            raise BufferProtocolError(f"ack for event {seq}, which was not sent")
        return count

    def requeue_inflight(self) -> int:
        """The connection was lost: put events in flight back in front, in order."""
        count = len(self._inflight)
        self._unsent.extendleft(reversed(self._inflight))
        self._inflight.clear()
        return count

    @property
    def last_seq(self) -> int:
        """The seq of the newest event added (0 before the first)."""
        return self._next_seq - 1

    def holds_through(self, seq: int) -> bool:
        """Whether an event numbered `seq` or lower still waits for its ack.
        Events keep their order (requeued ones go back in front), so the
        oldest is the first in flight, else the first unsent."""
        oldest = self._inflight or self._unsent
        return bool(oldest) and oldest[0].seq <= seq

    def pending(self) -> list[StateEvent]:
        """Every event not yet acknowledged, oldest first."""
        return [*self._inflight, *self._unsent]

    def _coalesce(self) -> int:
        last = {event.job_id: event.seq for event in self._unsent}
        if len(last) == len(self._unsent):
            return 0
        before = len(self._unsent)
        self._unsent = deque(e for e in self._unsent if last[e.job_id] == e.seq)
        removed = before - len(self._unsent)
        self.coalesced += removed
        return removed
