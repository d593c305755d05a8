"""Reading a job's history with filters: time window, streams, last N lines.

Plain generators over a `Snapshot`; the gRPC layer runs them off the event loop.
A damaged segment is logged and skipped; the segments around it are still served.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from joblet.persist.store.records import MARKER, Record, in_window, tail_lines
from joblet.persist.store.segment import CorruptSegment, SegmentInfo, iter_records
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


def inside(info: SegmentInfo, since_ns: int, until_ns: int) -> bool:
    return (
        bool(info.records)
        and (not since_ns or info.first_ts >= since_ns)
        and (not until_ns or info.last_ts <= until_ns)
    )


def tail_start(segments: Sequence[SegmentInfo], flt: LogFilter) -> int:
    """Index of the first segment that can hold the last `flt.tail` lines.

    Only segments wholly inside the window are counted, so the estimate never
    starts too late; the exact cut happens on the records.
    """
    kinds = flt.kinds or frozenset({1, 2, 3})
    newlines = 0
    for index in range(len(segments) - 1, -1, -1):
        info = segments[index]
        if inside(info, flt.since_ns, flt.until_ns):
            newlines += sum(info.lines[kind] for kind in kinds)
        if newlines > flt.tail:  # tail lines + the final newline
            return index
    return 0


def read_logs(snapshot: Snapshot, flt: LogFilter) -> Iterator[list[Record]]:
    segments = [s for s in snapshot.segments if overlaps(s, flt.since_ns, flt.until_ns)]
    if flt.tail:
        kept: list[Record] = []
        for chunk in _filtered(snapshot, segments[tail_start(segments, flt) :], flt):
            kept.extend(chunk)
        kept = tail_lines(kept, flt.tail)
        for start in range(0, len(kept), YIELD_RECORDS):
            yield kept[start : start + YIELD_RECORDS]
        return
    yield from _filtered(snapshot, segments, flt)


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
        yield from iter_records(path)
    except CorruptSegment as exc:
        log.error("skipping the rest of a damaged segment: %s", exc)
    except FileNotFoundError:
        log.warning("segment %s was removed while being read", path)
