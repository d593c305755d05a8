from __future__ import annotations

import pytest

from joblet.api import persist_pb2 as pb
from joblet.ipc.framing import encode_frame
from joblet.logs.format import LogRecord, RecordView, Stream
from joblet.persist.store.records import Record, pack_records, summarize_packed
from joblet.persist.wire import log_batch_frame


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300, 70_000, 1 << 20])
def test_hand_built_frame_equals_generated(size: int) -> None:
    records = [
        LogRecord(Stream.STDOUT, 1_700_000_000_123_456_789, b"x" * size),
        LogRecord(Stream.STDERR, 5, b"err\n"),
        LogRecord(Stream.SYSTEM, 2**62, b""),
    ]
    packed = pack_records([Record(int(r.stream), r.timestamp_ns, r.data) for r in records])
    request = pb.Request(seq=300 + size, logs=pb.LogBatch(job_id="a-job", packed=packed))
    assert log_batch_frame(300 + size, "a-job", records) == encode_frame(request)
    summary = summarize_packed(request.logs.packed)
    assert (summary.records, summary.raw_bytes) == (3, size + 4)
    assert (summary.first_ts, summary.last_ts) == (5, 2**62)


def test_empty_batch_equals_generated() -> None:
    assert log_batch_frame(1, "j", []) == encode_frame(
        pb.Request(seq=1, logs=pb.LogBatch(job_id="j"))
    )


def test_borrowed_records_give_the_same_frame() -> None:
    owned = [LogRecord(Stream.STDOUT, 7, b"abc\n"), LogRecord(Stream.STDERR, 8, b"x" * 200)]
    borrowed = [RecordView(r.stream, r.timestamp_ns, memoryview(r.data)) for r in owned]
    assert log_batch_frame(3, "j", borrowed) == log_batch_frame(3, "j", owned)
