from __future__ import annotations

import pytest

from joblet.api import persist_pb2 as pb
from joblet.ipc.framing import encode_frame
from joblet.logs.format import LogRecord, Stream
from joblet.persist.wire import log_batch_frame


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300, 70_000, 1 << 20])
def test_hand_built_frame_equals_generated(size: int) -> None:
    records = [
        LogRecord(Stream.STDOUT, 1_700_000_000_123_456_789, b"x" * size),
        LogRecord(Stream.STDERR, 5, b"err\n"),
        LogRecord(Stream.SYSTEM, 2**62, b""),
    ]
    entries = [
        pb.LogEntry(stream=int(r.stream), timestamp_ns=r.timestamp_ns, data=r.data)  # type: ignore[arg-type]
        for r in records
    ]
    request = pb.Request(seq=300 + size, logs=pb.LogBatch(job_id="a-job", entries=entries))
    assert log_batch_frame(300 + size, "a-job", records) == encode_frame(request)
