"""A damaged segment: keep what can be read, move the file aside.

A segment is a run of zstd frames, one per write. Damage (overwritten bytes,
a truncation) spoils the frame it hits; the frames after it can still be
read, found by zstd's frame magic number. `salvage` is the pure part: the
records of every whole frame, and where the damage was. `quarantine` does
the I/O: the damaged file becomes NAME.corrupt-<time> (never deleted), and a
fresh NAME holds the records salvaged, so readers and the index see only good
data, and whoever looks later still has the original bytes.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from joblet.persist.store.records import CorruptRecord, Record, decode, pack_records

log = logging.getLogger(__name__)

FRAME_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878, section 3.1.1


@dataclass
class Salvage:
    records: list[Record] = field(default_factory=list)
    damaged: list[tuple[int, int]] = field(default_factory=list)  # [start, end) byte ranges


def salvage(data: bytes) -> Salvage:
    """The records of every frame of `data` that decompresses and decodes whole."""
    result = Salvage()
    pos = 0
    while pos < len(data):
        frame = _frame_records(data, pos)
        if frame is not None:
            records, pos = frame
            result.records += records
            continue
        following = data.find(FRAME_MAGIC, pos + 1)
        end = len(data) if following < 0 else following
        result.damaged.append((pos, end))
        pos = end
    return result


def _frame_records(data: bytes, pos: int) -> tuple[list[Record], int] | None:
    """(records, where the next frame starts) of the frame at `pos`; None if
    it is damaged, cut short, or holds a partial record."""
    if not data.startswith(FRAME_MAGIC, pos):
        return None
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    try:
        raw = decompressor.decompress(data[pos:])
        records, used = decode(raw)
    except (zstandard.ZstdError, CorruptRecord):
        return None
    if not decompressor.eof or used != len(raw):
        return None
    return records, len(data) - len(decompressor.unused_data)


def quarantine_if_damaged(path: Path, level: int = 1) -> Path | None:
    """If the segment at `path` has damaged bytes, move it aside and write
    what could be read in its place (nothing when nothing could); returns
    where the original went, or None when the segment is sound."""
    found = salvage(path.read_bytes())
    if not found.damaged:
        return None
    aside = _aside_name(path)
    if found.records:
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        tmp = path.with_name(path.name + ".salvage")
        tmp.write_bytes(compressor.compress(pack_records(found.records)))
        os.rename(path, aside)
        os.rename(tmp, path)
    else:
        os.rename(path, aside)
    log.error(
        "damaged segment %s (bytes %s unreadable): kept its %d readable records; "
        "the original is now %s",
        path,
        ", ".join(f"{start}-{end}" for start, end in found.damaged) or "none",
        sum(1 for record in found.records if record.kind),
        aside,
    )
    return aside


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    count = 1
    while aside.exists():
        count += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{count}")
    return aside
