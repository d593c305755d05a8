"""Reading a job's history with filters: time window, streams, last N lines.

Plain generators over a `Snapshot`; the gRPC layer runs them off the event loop.
A damaged segment is logged and skipped; the segments around it are still served.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from joblet.persist.store.records import MARKER, Record, in_window, tail_lines
from joblet.persist.store.segment import (
    CorruptSegment,
    SegmentInfo,
    iter_records,
    iter_stream_records,
)
from joblet.persist.store.store import Snapshot

log = logging.getLogger(__name__)

YIELD_RECORDS = 512


@dataclass(frozen=True)
class LogFilter:
    since_ns: int = 0
    until_ns: int = 0
    kinds: frozenset[int] | None = None  # None: every stream
    tail: int = 0  # >0: only the last N lines


def overlaps(info: SegmentInfo, since_ns: int, until_ns: int) -> bool:
    if not info.records:
        return True  # unknown bounds (a damaged segment): let the reader decide
    if since_ns and info.last_ts < since_ns:
        return False
    return not (until_ns and info.first_ts > until_ns)


def read_logs(snapshot: Snapshot, flt: LogFilter) -> Iterator[list[Record]]:
    segments = [s for s in snapshot.segments if overlaps(s, flt.since_ns, flt.until_ns)]
    if flt.tail:
        kept = _tail(snapshot, segments, flt)
        for start in range(0, len(kept), YIELD_RECORDS):
            yield kept[start : start + YIELD_RECORDS]
        return
    yield from _filtered(snapshot, segments, flt)


def _tail(snapshot: Snapshot, segments: Sequence[SegmentInfo], flt: LogFilter) -> list[Record]:
    """The last `flt.tail` lines: segments are read from the newest back until
    they hold more newlines than that (the tail lines and the one before)."""
    newest_first: list[list[Record]] = []
    newlines = 0
    for info in reversed(segments):
        records = [r for chunk in _filtered(snapshot, [info], flt) for r in chunk]
        newest_first.append(records)
        newlines += sum(r.data.count(b"\n") for r in records)
        if newlines > flt.tail:
            break
    kept = [record for records in reversed(newest_first) for record in records]
    return tail_lines(kept, flt.tail)


def read_metrics(snapshot: Snapshot, from_ns: int, to_ns: int) -> Iterator[list[Record]]:
    segments = [s for s in snapshot.segments if overlaps(s, from_ns, to_ns)]
    yield from _filtered(snapshot, segments, LogFilter(from_ns, to_ns))


def _filtered(
    snapshot: Snapshot, segments: Sequence[SegmentInfo], flt: LogFilter
) -> Iterator[list[Record]]:
    for info in segments:
        for records in _segment_records(snapshot, info):
            chosen = [
                r
                for r in records
                if r.kind != MARKER
                and (flt.kinds is None or r.kind in flt.kinds)
                and in_window(r, flt.since_ns, flt.until_ns)
            ]
            if chosen:
                yield chosen


def _segment_records(snapshot: Snapshot, info: SegmentInfo) -> Iterator[list[Record]]:
    path = snapshot.directory / info.name
    try:
        if snapshot.opener is None:
            yield from iter_records(path)
        else:
            with snapshot.opener(info) as handle:
                yield from iter_stream_records(handle, info.name)
    except CorruptSegment as exc:
        log.error("skipping the rest of a damaged segment: %s", exc)
    except FileNotFoundError:
        if snapshot.fallback is None:
            log.warning("segment %s was removed while being read", path)
            return
        # The file is opened before its first record is read: nothing of it
        # was served yet, so the archive's copy is read whole.
        with snapshot.fallback(info) as handle:
            yield from iter_stream_records(handle, info.name)
