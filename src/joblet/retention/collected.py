"""What a node remembers of the jobs it collected: when each went, and until
when persist keeps its history, so that asking for one gets a clear answer
instead of a bare "not found".

Compact on purpose: ids are kept as their 16 bytes, each collection batch
once (its time and its oldest end), and the whole is bounded: the oldest
batches go first, and so does a batch whose history persist has dropped.
Each batch is one record in the state store, so the answers survive a
restart. Pure code; the collector stores and deletes the records.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from joblet.errors import NotFound
from joblet.jobs.schedule import format_rfc3339

MAX_REMEMBERED = 50_000  # ids; ~90 bytes each in memory
KEY_PREFIX = "collected:"


class RecordError(ValueError):
    """A stored batch cannot be read."""


@dataclass(frozen=True)
class Batch:
    key: str  # its record's key in the state store
    at: float  # when its jobs were collected
    oldest_end: float  # the earliest end among them: persist keeps them at least this long
    ids: tuple[str, ...]

    def history_until(self, history_age_s: float) -> float:
        """When persist may drop the history of the batch's jobs; 0 = no age limit."""
        return self.oldest_end + history_age_s if history_age_s else 0.0


@dataclass(frozen=True)
class Collected:
    job_id: str
    at: float
    history_until: float  # 0: kept while persist has room


class JobCollected(NotFound):
    """A job asked for by id after it was collected: NOT_FOUND, saying so."""

    def __init__(self, gone: Collected) -> None:
        self.gone = gone
        kept = (
            f"its history is kept until {format_rfc3339(gone.history_until)}"
            if gone.history_until
            else "its history is kept while persist has room"
        )
        super().__init__(
            f"job {gone.job_id} was collected at {format_rfc3339(gone.at)} "
            f"(joblet.jobRetention); {kept}"
        )


def _id_key(job_id: str) -> bytes:
    try:
        return uuid.UUID(job_id).bytes
    except ValueError:
        return job_id.encode()


def encode(batch: Batch) -> bytes:
    doc = {"at": batch.at, "oldestEnd": batch.oldest_end, "ids": list(batch.ids)}
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(key: str, blob: bytes) -> Batch:
    try:
        doc = json.loads(blob)
        ids = tuple(str(i) for i in doc["ids"])
        return Batch(key, float(doc["at"]), float(doc["oldestEnd"]), ids)
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"unreadable record {key}: {exc}") from exc


class CollectedIds:
    def __init__(self, history_age_s: float, limit: int = MAX_REMEMBERED) -> None:
        self._history_age_s = history_age_s
        self._limit = limit
        self._batches: OrderedDict[str, Batch] = OrderedDict()  # oldest first
        self._index: dict[bytes, Batch] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._index)

    def lookup(self, job_id: str) -> Collected | None:
        batch = self._index.get(_id_key(job_id))
        if batch is None:
            return None
        return Collected(job_id, batch.at, batch.history_until(self._history_age_s))

    def new_batch(self, at: float, ended: Iterable[tuple[str, float]]) -> Batch:
        """A batch for the jobs just collected ((id, ended_at) pairs), added."""
        pairs = list(ended)
        self._seq += 1
        key = f"{KEY_PREFIX}{at:.6f}-{self._seq}"
        batch = Batch(key, at, min(end for _, end in pairs), tuple(i for i, _ in pairs))
        self.add(batch)
        return batch

    def load(self, batches: Iterable[Batch]) -> None:
        """Batches read back from the store at a start, in any order."""
        for batch in sorted(batches, key=lambda b: (b.at, b.key)):
            self.add(batch)

    def add(self, batch: Batch) -> None:
        self._batches[batch.key] = batch
        for job_id in batch.ids:
            self._index[_id_key(job_id)] = batch

    def expired(self, now: float) -> list[Batch]:
        """Batches to forget now (their keys to delete from the store):
        persist has dropped their history, or they are the oldest over the limit."""
        gone: list[Batch] = []
        for batch in list(self._batches.values()):
            until = batch.history_until(self._history_age_s)
            if (until and until < now) or len(self._index) > self._limit:
                gone.append(batch)
                self._drop(batch)
        return gone

    def _drop(self, batch: Batch) -> None:
        del self._batches[batch.key]
        for job_id in batch.ids:
            key = _id_key(job_id)
            if self._index.get(key) is batch:
                del self._index[key]
