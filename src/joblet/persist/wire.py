"""Hand-built protobuf frames for the hot path: a LogBatch request.

The records travel packed (`LogBatch.packed`: the layout of output.log and of
persist's segments), so persist stores them without unpacking each one, and
each payload is copied once here, by the final join. The bytes are exactly
what `encode_frame(request)` gives (tested), so any protobuf code reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

from joblet.ipc.framing import encode_varint
from joblet.logs.format import HEADER, Framed

# (field number << 3) | wire type; 0 = varint, 2 = length-delimited.
_SEQ = bytes([1 << 3 | 0])
_LOGS = bytes([3 << 3 | 2])
_JOB_ID = bytes([1 << 3 | 2])
_PACKED = bytes([3 << 3 | 2])


def log_batch_frame(seq: int, job_id: str, records: Sequence[Framed]) -> bytes:
    """The length-delimited frame of Request{seq, logs: LogBatch{job_id, packed}}."""
    pack = HEADER.pack
    parts: list[bytes | memoryview] = []
    packed_len = 0
    for record in records:
        parts += (pack(record.stream, record.timestamp_ns, len(record.data)), record.data)
        packed_len += HEADER.size + len(record.data)
    return b"".join([_frame_head(seq, job_id, packed_len), *parts])


def packed_log_frame(seq: int, job_id: str, packed: bytes | memoryview) -> bytes:
    """The same frame for records already packed (bytes of an output.log)."""
    return b"".join([_frame_head(seq, job_id, len(packed)), packed])


def _frame_head(seq: int, job_id: str, packed_len: int) -> bytes:
    """Everything of the frame before the packed records."""
    job = job_id.encode()
    # proto3 leaves fields at their default value out; so do we, byte for byte.
    batch_head = _JOB_ID + encode_varint(len(job)) + job if job else b""
    if packed_len:
        batch_head += _PACKED + encode_varint(packed_len)
    batch_len = len(batch_head) + packed_len
    request_head = (_SEQ + encode_varint(seq) if seq else b"") + _LOGS + encode_varint(batch_len)
    return encode_varint(len(request_head) + batch_len) + request_head + batch_head
