"""Stored histories the hub has read from persist, kept as the bytes of their
JobMetricsHistoryResponse, so that a history over any range is one slice.

Reading 24 h of samples (17,280) from persist costs the daemon and persist
hundreds of milliseconds of Python; a viewer polls the same job again and
again. So the first read of a job keeps it here, the hub appends the job's
new samples as it publishes them (a running job stays current), and
summaries read the same bytes (only their fields; the last answer is kept).

    cache = HistoryCache(max_bytes=64 << 20)
    stored = cache.get(job_id) or cache.put(job_id, StoredHistory(stamps, payloads))
    response_bytes = stored.response(from_ns, to_ns)
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Sequence

from joblet.api import joblet_pb2 as pb
from joblet.ipc.framing import decode_varint, encode_varint
from joblet.metrics.history import Series, encode_history, summary_points, summary_series
from joblet.metrics.summary import Point, summarize_series

TAG = b"\x0a"  # field 1 (samples), length-delimited
IDLE_S = 600.0  # an entry unread this long is dropped (persist's retention may have moved on)


class StoredHistory:
    """One job's samples, oldest first, one per timestamp."""

    def __init__(self, stamps: Sequence[int], payloads: Sequence[bytes]) -> None:
        self._load(stamps, payloads)
        self.used = time.monotonic()

    def _load(self, stamps: Sequence[int], payloads: Sequence[bytes]) -> None:
        self._stamps = list(stamps)
        # bytes, not a bytearray: a whole history is sent as it is, without a
        # copy; an addition (one every few seconds) copies it instead.
        self._blob = encode_history(payloads)
        self._starts: list[int] | None = None  # where each sample starts; on demand
        self._series: Series | None = None  # of every sample, for whole-history summaries
        self._summary: tuple[tuple[int, int, int], pb.JobMetricsSummaryResponse] | None = None

    def __len__(self) -> int:
        return len(self._stamps)

    @property
    def nbytes(self) -> int:
        lists = 1 + (self._starts is not None) + 4 * (self._series is not None)
        return len(self._blob) + 8 * len(self._stamps) * lists

    def add(self, timestamp: int, payload: bytes) -> None:
        """A newer sample is appended; one already held is ignored; an older one
        (a wall clock set back) is put in its place."""
        if self._stamps and timestamp <= self._stamps[-1]:
            index = bisect_left(self._stamps, timestamp)
            if self._stamps[index] != timestamp:
                self._insert(index, timestamp, payload)
            return
        if self._starts is not None:
            self._starts.append(len(self._blob))
        self._stamps.append(timestamp)
        framed = TAG + encode_varint(len(payload)) + payload
        self._blob += framed
        if self._series is not None:
            for values, new in zip(self._series, summary_series(framed, 1), strict=True):
                values.extend(new)

    def response(self, from_ns: int = 0, to_ns: int = 0) -> bytes:
        """A serialized JobMetricsHistoryResponse of the samples with
        from_ns <= timestamp <= to_ns (0 leaves that end open)."""
        self.used = time.monotonic()
        first = bisect_left(self._stamps, from_ns) if from_ns else 0
        stop = bisect_right(self._stamps, to_ns) if to_ns else len(self._stamps)
        if first >= stop:
            return b""
        return self._blob[self._start(first) : self._start(stop)]

    def points(self) -> list[Point]:
        """summary.point of every sample."""
        self.used = time.monotonic()
        return summary_points(self._blob)

    def summary(self, period_s: int) -> pb.JobMetricsSummaryResponse:
        """The summary over the last `period_s` up to the newest sample (0: all);
        the last answer is kept until a sample is added or another period is asked."""
        self.used = time.monotonic()
        newest = self._stamps[-1] if self._stamps else 0
        key = (period_s, len(self._stamps), newest)
        if self._summary is None or self._summary[0] != key:
            first = 0
            if period_s > 0:
                first = bisect_left(self._stamps, newest - period_s * 1_000_000_000)
            if first == 0:
                if self._series is None:  # kept, and extended by `add`
                    self._series = summary_series(self._blob, len(self._stamps))
                series = self._series
            else:
                part = self._blob[self._start(first) :]
                series = summary_series(part, len(self._stamps) - first)
            self._summary = (key, summarize_series(*series))
        return self._summary[1]

    def _start(self, index: int) -> int:
        if index == 0:
            return 0
        if index >= len(self._stamps):
            return len(self._blob)
        if self._starts is None:
            # Offsets from the payloads' lengths, read back from the bytes.
            self._starts = []
            pos, end = 0, len(self._blob)
            while pos < end:
                self._starts.append(pos)
                length, after = decode_varint(self._blob, pos + 1)
                pos = after + length
        return self._starts[index]

    def _insert(self, index: int, timestamp: int, payload: bytes) -> None:
        payloads = [self._payload(i) for i in range(len(self._stamps))]
        payloads.insert(index, payload)
        self._stamps.insert(index, timestamp)
        self._load(self._stamps, payloads)  # rare: rebuilt

    def _payload(self, index: int) -> bytes:
        length, pos = decode_varint(self._blob, self._start(index) + 1)
        return self._blob[pos : pos + length]


class HistoryCache:
    """Stored histories by job id, the least recently used dropped first once
    they hold more than `max_bytes` (one larger than that is not kept)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, StoredHistory] = OrderedDict()

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._entries

    def get(self, job_id: str) -> StoredHistory | None:
        entry = self._entries.get(job_id)
        if entry is None:
            return None
        if time.monotonic() - entry.used > IDLE_S:
            del self._entries[job_id]
            return None
        self._entries.move_to_end(job_id)
        return entry

    def put(self, job_id: str, entry: StoredHistory) -> StoredHistory:
        self._entries[job_id] = entry
        self._entries.move_to_end(job_id)
        self.trim()
        return entry

    def add(self, job_id: str, timestamp: int, payload: bytes) -> None:
        entry = self._entries.get(job_id)
        if entry is not None:
            entry.add(timestamp, payload)

    def drop(self, job_id: str) -> None:
        self._entries.pop(job_id, None)

    def nbytes(self) -> int:
        return sum(entry.nbytes for entry in self._entries.values())

    def trim(self) -> None:
        total = self.nbytes()
        while total > self.max_bytes and self._entries:
            _, entry = self._entries.popitem(last=False)
            total -= entry.nbytes
