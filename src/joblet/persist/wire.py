"""Hand-built protobuf frames for the hot path: a LogBatch request.

Building `pb.Request(logs=pb.LogBatch(entries=[...]))` copies each payload
several times (into the entry, the batch, the request, the serialized bytes);
here each payload is copied once, by the final join. The bytes are exactly
what `encode_frame(request)` gives (tested), so persist parses them with the
generated code as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

from joblet.ipc.framing import encode_varint
from joblet.logs.format import LogRecord

# (field number << 3) | wire type; 0 = varint, 2 = length-delimited.
_SEQ = bytes([1 << 3 | 0])
_LOGS = bytes([3 << 3 | 2])
_JOB_ID = bytes([1 << 3 | 2])
_ENTRY = bytes([2 << 3 | 2])
_STREAM = bytes([1 << 3 | 0])
_TIMESTAMP = bytes([2 << 3 | 0])
_DATA = bytes([3 << 3 | 2])


def _entry_head(record: LogRecord) -> tuple[bytes, int]:
    """The bytes of a LogEntry before its data, and the entry's full length."""
    # proto3 leaves fields at their default value out; so do we, byte for byte.
    head = b""
    if record.stream:
        head += _STREAM + encode_varint(int(record.stream))
    if record.timestamp_ns:
        head += _TIMESTAMP + encode_varint(record.timestamp_ns)
    if record.data:
        head += _DATA + encode_varint(len(record.data))
    return head, len(head) + len(record.data)


def log_batch_frame(seq: int, job_id: str, records: Sequence[LogRecord]) -> bytes:
    """The length-delimited frame of Request{seq, logs: LogBatch{job_id, entries}}."""
    parts: list[bytes] = []
    job = job_id.encode()
    batch_len = 1 + len(encode_varint(len(job))) + len(job)
    for record in records:
        head, entry_len = _entry_head(record)
        parts += (_ENTRY, encode_varint(entry_len), head, record.data)
        batch_len += 1 + len(encode_varint(entry_len)) + entry_len
    batch_head = _JOB_ID + encode_varint(len(job)) + job
    request_head = _SEQ + encode_varint(seq) + _LOGS + encode_varint(batch_len)
    body_len = len(request_head) + batch_len
    return b"".join([encode_varint(body_len), request_head, batch_head, *parts])
