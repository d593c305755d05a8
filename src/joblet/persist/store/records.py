"""Records inside a segment's decompressed stream: pure encode, decode and filters.

    struct header { u8 kind; u64 timestamp_ns; u32 length; }  (little endian)
    followed by `length` bytes.

The same header as the launcher's output.log (joblet.logs.format), so a log
record's kind is its `Stream`. Kind 0 is a batch marker that persist writes
after each batch: its timestamp field holds the batch's seq and its data the
sender's session. Because the marker follows the batch's data in the stream, a
marker on disk proves the whole batch is there; replayed batches at or below
it are duplicates. Several batches of one job may share one marker (persist
writes what arrived together as one block): the marker then holds the last
seq, and proves every batch before it.

The daemon sends log records already in this layout ("packed"), so persist
checks the headers and hands the bytes to the compressor without unpacking
them (`summarize_packed`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

HEADER = struct.Struct("<BQI")
MARKER = 0
MAX_KIND = 3
MAX_RECORD = 64 * 1024 * 1024


class CorruptRecord(Exception):
    """The decompressed bytes are not a valid record sequence."""


@dataclass(frozen=True)
class Record:
    kind: int
    timestamp_ns: int
    data: bytes


@dataclass(frozen=True)
class Marker:
    session: str
    seq: int


@dataclass(frozen=True)
class PackedSummary:
    """What the index needs of a run of packed records (markers excluded)."""

    records: int = 0
    raw_bytes: int = 0
    first_ts: int = 0  # the smallest timestamp; 0 when there are no records
    last_ts: int = 0  # the largest


@dataclass(frozen=True)
class PackedBatch:
    """One request's records, packed and checked, waiting to be written."""

    seq: int
    data: bytes
    summary: PackedSummary

    @classmethod
    def of_records(cls, seq: int, records: Sequence[Record]) -> PackedBatch:
        data = pack_records(records)
        return cls(seq, data, summarize_packed(data))


def pack_records(records: Sequence[Record]) -> bytes:
    """Records in the packed layout (no marker)."""
    parts: list[bytes] = []
    for record in records:
        parts.append(HEADER.pack(record.kind, record.timestamp_ns, len(record.data)))
        parts.append(record.data)
    return b"".join(parts)


def encode_marker(marker: Marker) -> bytes:
    session = marker.session.encode()
    return HEADER.pack(MARKER, marker.seq, len(session)) + session


def encode_batch(records: Sequence[Record], marker: Marker) -> bytes:
    """The bytes of one batch: its records, then its marker."""
    return pack_records(records) + encode_marker(marker)


def summarize_packed(buf: bytes | memoryview) -> PackedSummary:
    """Check that `buf` is whole data records (kinds 1..3, no markers) and sum
    them up; raises CorruptRecord. Only the headers are read."""
    unpack = HEADER.unpack_from
    size = HEADER.size
    end = len(buf)
    pos = count = 0
    first = last = 0
    while pos < end:
        if end - pos < size:
            raise CorruptRecord(f"{end - pos} stray bytes at offset {pos}")
        kind, ts, length = unpack(buf, pos)
        if not 1 <= kind <= MAX_KIND:
            raise CorruptRecord(f"record at offset {pos} has an unknown stream ({kind})")
        if not count or ts < first:
            first = ts
        last = max(last, ts)
        count += 1
        pos += size + length
    if pos != end:
        raise CorruptRecord(f"the last record runs {pos - end} bytes past the end")
    return PackedSummary(count, end - count * size, first, last)


def merge_summaries(summaries: Sequence[PackedSummary]) -> PackedSummary:
    present = [s for s in summaries if s.records]
    if not present:
        return PackedSummary()
    return PackedSummary(
        sum(s.records for s in present),
        sum(s.raw_bytes for s in present),
        min(s.first_ts for s in present),
        max(s.last_ts for s in present),
    )


def decode(buf: bytes | memoryview) -> tuple[list[Record], int]:
    """Whole records in `buf` (markers included) and the bytes they used."""
    records: list[Record] = []
    view = memoryview(buf)
    pos = 0
    end = len(view)
    while end - pos >= HEADER.size:
        kind, ts, length = HEADER.unpack_from(view, pos)
        if kind > MAX_KIND or length > MAX_RECORD:
            raise CorruptRecord(f"bad record header at offset {pos} (kind {kind}, {length} B)")
        stop = pos + HEADER.size + length
        if stop > end:
            break
        records.append(Record(kind, ts, bytes(view[pos + HEADER.size : stop])))
        pos = stop
    return records, pos


def in_window(record: Record, since_ns: int, until_ns: int) -> bool:
    """since/until are inclusive bounds; 0 means unbounded."""
    if since_ns and record.timestamp_ns < since_ns:
        return False
    return not (until_ns and record.timestamp_ns > until_ns)


def tail_lines(records: Sequence[Record], lines: int) -> list[Record]:
    """The shortest suffix of `records` holding the last `lines` lines.

    A line ends at a newline; unterminated output at the very end counts as a
    line too. The first record kept is cut to start where its line starts.
    """
    if lines <= 0 or not records:
        return []
    wanted = lines
    for index in range(len(records) - 1, -1, -1):
        data = records[index].data
        end = len(data) - 1 if index == len(records) - 1 and data.endswith(b"\n") else len(data)
        cut = _start_of_last_lines(data, end, wanted)
        if cut is not None:
            first = records[index]
            kept = Record(first.kind, first.timestamp_ns, data[cut:])
            rest = list(records[index + 1 :])
            return [kept, *rest] if kept.data else rest
        wanted -= data.count(b"\n", 0, end)
    return list(records)


def _start_of_last_lines(data: bytes, end: int, wanted: int) -> int | None:
    """Offset after the `wanted`-th newline counted back from `end`, if present."""
    pos = end
    for _ in range(wanted):
        pos = data.rfind(b"\n", 0, pos)
        if pos < 0:
            return None
    return pos + 1
