"""Groups of IPC frames applied to the stores, and the stream cut into frames."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path

import pytest

from joblet.api import persist_pb2 as pb
from joblet.ipc.framing import FrameError, encode_frame
from joblet.logs.format import LogRecord, Stream
from joblet.persist.ingest import Connection, Ingest
from joblet.persist.ipc_server import FrameSplitter
from joblet.persist.store import HistoryStore, LogFilter, Record, read_logs
from joblet.persist.store.records import PackedBatch
from joblet.persist.wire import log_batch_frame


def _body(frame: bytes) -> bytes:
    """A frame without its varint length."""
    start = 0
    while frame[start] & 0x80:
        start += 1
    return frame[start + 1 :]


def _logs(seq: int, job: str, text: bytes, stream: Stream = Stream.STDOUT) -> bytes:
    return _body(log_batch_frame(seq, job, [LogRecord(stream, seq, text)]))


def _control(request: pb.Request) -> bytes:
    return request.SerializeToString()


def _hello(session: str) -> bytes:
    return _control(pb.Request(hello=pb.Hello(session=session)))


@pytest.fixture
def ingest(tmp_path: Path) -> Ingest:
    return Ingest(
        HistoryStore(tmp_path / "logs", 1 << 20, 1), HistoryStore(tmp_path / "metrics", 1 << 20, 1)
    )


def _text(store: HistoryStore, job: str) -> bytes:
    snap = store.snapshot(job)
    assert snap is not None
    return b"".join(r.data for chunk in read_logs(snap, LogFilter()) for r in chunk)


def test_group_of_jobs_is_applied_and_acknowledged(ingest: Ingest) -> None:
    finished = _control(pb.Request(seq=5, job_finished=pb.JobFinished(job_id="a")))
    frames = [
        _hello("s1"),
        _logs(1, "a", b"a1\n"),
        _logs(2, "b", b"b2\n"),
        _logs(3, "a", b"a3\n", Stream.STDERR),
        _control(
            pb.Request(
                seq=4,
                metrics=pb.MetricBatch(
                    job_id="a", samples=[pb.MetricSample(timestamp_ns=7, payload=b"m")]
                ),
            )
        ),
        finished,
        _logs(6, "b", b"b6\n"),
    ]
    conn = Connection()
    outcome = ingest.apply_frames(conn, frames)
    assert (conn.session, outcome.acked_seq, outcome.failure) == ("s1", 6, None)
    assert outcome.rejected == []
    assert _text(ingest.logs, "a") == b"a1\na3\n"
    assert _text(ingest.logs, "b") == b"b2\nb6\n"
    assert _text(ingest.metrics, "a") == b"m"
    assert ingest.stats.batches_written == 5
    # the same group again (a replay after a reconnect): nothing is written twice
    again = ingest.apply_frames(Connection(), frames)
    assert again.acked_seq == 6
    assert _text(ingest.logs, "b") == b"b2\nb6\n"
    assert ingest.stats.duplicates_skipped == 5


def test_a_logs_only_delete_keeps_the_metric_history(ingest: Ingest) -> None:
    sample = pb.MetricSample(timestamp_ns=7, payload=b"m")
    metrics = _control(pb.Request(seq=2, metrics=pb.MetricBatch(job_id="a", samples=[sample])))
    logs_only = pb.DeleteJob(job_id="a", logs_only=True)
    frames = [_hello("s"), _logs(1, "a", b"old\n"), metrics]
    frames += [_control(pb.Request(seq=3, delete_job=logs_only)), _logs(4, "a", b"new\n")]
    assert ingest.apply_frames(Connection(), frames).acked_seq == 4
    assert _text(ingest.logs, "a") == b"new\n"
    assert _text(ingest.metrics, "a") == b"m"
    everything = _control(pb.Request(seq=5, delete_job=pb.DeleteJob(job_id="a")))
    assert ingest.apply_frames(Connection(), [_hello("s"), everything]).acked_seq == 5
    assert ingest.logs.snapshot("a") is None and ingest.metrics.snapshot("a") is None


def test_generic_entries_are_accepted(ingest: Ingest) -> None:
    entries = [pb.LogEntry(stream=pb.STREAM_STDERR, timestamp_ns=9, data=b"e\n")]
    request = pb.Request(seq=1, logs=pb.LogBatch(job_id="j", entries=entries))
    assert ingest.apply_frames(Connection("s"), [_control(request)]).acked_seq == 1
    snap = ingest.logs.snapshot("j")
    assert snap is not None
    assert [r for chunk in read_logs(snap, LogFilter()) for r in chunk] == [Record(2, 9, b"e\n")]


def test_invalid_requests_are_rejected_with_reasons(ingest: Ingest) -> None:
    bad_stream = pb.LogEntry(stream=7, timestamp_ns=1, data=b"x")  # type: ignore[arg-type]
    frames = [
        _logs(1, "../escape", b"x"),
        _control(pb.Request(seq=2, logs=pb.LogBatch(job_id="j", entries=[bad_stream]))),
        _control(pb.Request(seq=3, logs=pb.LogBatch(job_id="j", packed=b"\x01short"))),
        _logs(4, "j", b"fine\n"),
        _control(pb.Request(seq=5)),
    ]
    outcome = ingest.apply_frames(Connection("s"), frames)
    assert [seq for seq, _why in outcome.rejected] == [1, 2, 3, 5]
    assert "invalid job id" in outcome.rejected[0][1]
    assert "unknown stream" in outcome.rejected[1][1]
    assert "stray bytes" in outcome.rejected[2][1]
    assert outcome.acked_seq == 5
    assert _text(ingest.logs, "j") == b"fine\n"


def test_a_frame_that_is_not_a_request_ends_the_group(ingest: Ingest) -> None:
    conn = Connection("s")
    frames = [_logs(1, "j", b"kept\n"), b"\xff\xff\xff", _logs(2, "j", b"x")]
    outcome = ingest.apply_frames(conn, frames)
    assert outcome.bad_frame and outcome.acked_seq == 1 and conn.stopped
    assert _text(ingest.logs, "j") == b"kept\n"


def test_storage_failure_sets_the_replay_point(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = HistoryStore.append_packed

    def full_for_b(
        self: HistoryStore, job_id: str, session: str, batches: Sequence[PackedBatch]
    ) -> int:
        if job_id == "b":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, job_id, session, batches)

    monkeypatch.setattr(HistoryStore, "append_packed", full_for_b)
    frames = [_logs(1, "a", b"a1\n"), _logs(2, "b", b"b2\n"), _logs(3, "c", b"c3\n")]
    frames += [_logs(4, "a", b"a4\n"), _logs(5, "zz-invalid/", b"x")]
    conn = Connection("s")
    outcome = ingest.apply_frames(conn, frames)
    # a (1, 4) was written; b failed at 2 and c (3) never got its turn: the
    # sender replays from 2, and a's 4 is then skipped as a duplicate
    assert outcome.failure is not None and outcome.failure[0] == 2
    assert "disk full" in outcome.failure[1]
    assert (outcome.acked_seq, outcome.rejected) == (1, [])
    assert _text(ingest.logs, "a") == b"a1\na4\n"
    assert ingest.logs.snapshot("c") is None
    assert ingest.stats.write_errors == 1
    # groups already queued behind the failed one are not applied at all
    assert conn.stopped
    assert ingest.apply_frames(conn, [_logs(6, "c", b"c6\n")]).acked_seq == 0
    assert ingest.logs.snapshot("c") is None


def test_splitter_cuts_frames_across_reads() -> None:
    frames = [encode_frame(pb.Ack(seq=i, ok=True, error="e" * (i * 40))) for i in range(1, 8)]
    frames.append(log_batch_frame(99, "j", [LogRecord(Stream.STDOUT, 1, b"z" * 300_000)]))
    stream = b"".join(frames)
    for size in (1, 2, 3, 100, 4096, len(stream)):
        splitter = FrameSplitter()
        got: list[bytes] = []
        for start in range(0, len(stream), size):
            got += splitter.feed(stream[start : start + size])
        assert got == [_body(f) for f in frames]
        assert not splitter.inside_frame
    splitter = FrameSplitter()
    assert splitter.feed(stream[:10]) == []
    assert splitter.inside_frame


def test_splitter_refuses_oversized_and_endless_lengths() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        FrameSplitter(max_frame=100).feed(b"\xc8\x01" + b"x" * 10)
    with pytest.raises(FrameError, match="too long"):
        FrameSplitter().feed(b"\xff" * 11)


def test_a_final_sample_after_the_end_is_sealed_by_the_metrics_only_end(ingest: Ingest) -> None:
    """The job's final sample can reach persist after the log's end sealed
    both histories: it reopens the metric history, and the metrics-only end
    that follows it closes it again, leaving the log's history alone."""

    def metric(seq: int, t: int) -> bytes:
        sample = pb.MetricSample(timestamp_ns=t, payload=b"m")
        return _control(pb.Request(seq=seq, metrics=pb.MetricBatch(job_id="a", samples=[sample])))

    ended = pb.Request(seq=3, job_finished=pb.JobFinished(job_id="a"))
    frames = [_hello("s1"), _logs(1, "a", b"a1\n"), metric(2, 7), _control(ended), metric(4, 8)]
    ingest.apply_frames(Connection(), frames)
    assert ingest.metrics.is_open("a") and not ingest.logs.is_open("a")
    metrics_end = pb.Request(seq=5, job_finished=pb.JobFinished(job_id="a", metrics_only=True))
    ingest.apply_frames(Connection(), [_hello("s1"), _control(metrics_end)])
    assert not ingest.metrics.is_open("a") and not ingest.logs.is_open("a")
    assert _text(ingest.logs, "a") == b"a1\n"


def _tick(seq: int, parts: dict[str, list[tuple[int, bytes]]]) -> bytes:
    batches = [
        pb.MetricBatch(
            job_id=job, samples=[pb.MetricSample(timestamp_ns=t, payload=p) for t, p in s]
        )
        for job, s in parts.items()
    ]
    return _control(pb.Request(seq=seq, metric_tick=pb.MetricTick(batches=batches)))


def test_a_tick_of_many_jobs_is_stored_per_job_once(ingest: Ingest) -> None:
    """One request with every job's sample of a tick: each job's part lands in
    its own history, a bad part is rejected alone, and a replay of the
    request writes nothing twice."""
    frames = [
        _hello("s1"),
        _tick(1, {"a": [(5, b"a5")], "b": [(5, b"b5")], "../bad": [(5, b"x")]}),
        _tick(2, {"a": [(10, b"a10")], "b": [(10, b"b10")]}),
    ]
    outcome = ingest.apply_frames(Connection(), frames)
    assert outcome.acked_seq == 2 and outcome.failure is None
    assert [(seq, "invalid job id" in why) for seq, why in outcome.rejected] == [(1, True)]
    assert _text(ingest.metrics, "a") == b"a5a10"
    assert _text(ingest.metrics, "b") == b"b5b10"
    assert ingest.stats.batches_written == 4
    again = ingest.apply_frames(Connection(), frames)
    assert again.acked_seq == 2
    assert _text(ingest.metrics, "a") == b"a5a10"
    assert ingest.stats.duplicates_skipped == 4


def test_a_tick_with_a_negative_timestamp_rejects_that_jobs_part(ingest: Ingest) -> None:
    frames = [_hello("s1"), _tick(1, {"a": [(-1, b"bad")], "b": [(3, b"b3")]})]
    outcome = ingest.apply_frames(Connection(), frames)
    assert [(seq, "negative timestamp" in why) for seq, why in outcome.rejected] == [(1, True)]
    assert ingest.metrics.snapshot("a") is None
    assert _text(ingest.metrics, "b") == b"b3"
