"""Log records as CloudWatch Logs events, in PutLogEvents batches (pure).

The service's limits: a batch is at most 1,048,576 bytes (each event counts
its UTF-8 message plus 26 bytes) and 10,000 events, in time order, spanning
at most 24 hours; one event is at most 256 KiB. A record is one event; a
longer one is cut into several.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_BATCH_BYTES = 1_048_576
MAX_BATCH_EVENTS = 10_000
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD
MAX_SPAN_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Event:
    timestamp_ms: int
    message: str

    @property
    def size(self) -> int:
        return len(self.message.encode()) + EVENT_OVERHEAD

    def to_api(self) -> dict[str, object]:
        return {"timestamp": self.timestamp_ms, "message": self.message}


def events_of(timestamp_ns: int, data: bytes) -> Iterator[Event]:
    """One record as events: its text (invalid UTF-8 replaced), cut where
    it is longer than an event may be; nothing for an empty record."""
    text = data.decode("utf-8", errors="replace")
    stamp = timestamp_ns // 1_000_000
    while text:
        piece = text[:MAX_EVENT_BYTES]
        while len(piece.encode()) > MAX_EVENT_BYTES:  # multi-byte characters
            piece = piece[: len(piece) * 3 // 4]
        yield Event(stamp, piece)
        text = text[len(piece) :]


def batches(events: Iterable[Event]) -> Iterator[list[Event]]:
    """Consecutive events (already in time order) cut into batches within
    the limits; the order is kept."""
    batch: list[Event] = []
    size = 0
    for event in events:
        full = (
            len(batch) >= MAX_BATCH_EVENTS
            or size + event.size > MAX_BATCH_BYTES
            or (batch and event.timestamp_ms - batch[0].timestamp_ms > MAX_SPAN_MS)
        )
        if full and batch:
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event.size
    if batch:
        yield batch
