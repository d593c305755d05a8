"""JobLogs over a real log file: history, tail, live follow and the copy to
persist, with the hub's inotify watch (no root needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from joblet.logs.filters import LogFilter
from joblet.logs.follow import LogHub
from joblet.logs.format import Framed, Stream, encode_record
from joblet.logs.service import JobLogs

JOB = "job-1"


class RecordingSink:
    """A LogSink that keeps copies of what it was sent (as persist would)."""

    def __init__(self) -> None:
        self.dropped_bytes = 0
        self.records: list[tuple[Stream, int, bytes]] = []
        self.finished: list[str] = []
        self.log_deletes = 0

    def send_logs(self, job_id: str, records: Sequence[Framed]) -> None:
        self.records += [(r.stream, r.timestamp_ns, bytes(r.data)) for r in records]

    def has_room(self) -> bool:
        return True

    async def wait_for_room(self) -> None:
        return None

    def job_finished(self, job_id: str) -> None:
        self.finished.append(job_id)

    def delete(self, job_id: str) -> None:
        self.records = []

    def delete_logs(self, job_id: str) -> None:
        self.log_deletes += 1
        self.records = []

    async def stored(self, timeout: float) -> bool:
        return True


def _append(path: Path, stream: Stream, ts: int, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(encode_record(stream, ts, data))


def _copying(tmp_path: Path) -> tuple[Path, LogHub, RecordingSink, JobLogs]:
    """An empty log, its hub started, and JobLogs copying it to a RecordingSink."""
    path = tmp_path / "output.log"
    path.touch()
    hub = LogHub()
    hub.start()
    sink = RecordingSink()
    return path, hub, sink, JobLogs(hub, lambda _job: path, sink=sink)


async def _collect(logs: JobLogs, log_filter: LogFilter) -> bytes:
    return b"".join([chunk async for chunk in logs.read(JOB, log_filter)])


async def test_history_with_tail_and_stream_filter(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    _append(path, Stream.STDOUT, 1, b"a\nb\n")
    _append(path, Stream.STDERR, 2, b"err\n")
    _append(path, Stream.STDOUT, 3, b"c\nd\n")
    hub = LogHub()
    hub.track(JOB, path, finished=True)
    logs = JobLogs(hub, lambda _job: path)
    assert await _collect(logs, LogFilter(follow=False)) == b"a\nb\nerr\nc\nd\n"
    assert await _collect(logs, LogFilter(tail_lines=3)) == b"err\nc\nd\n"
    assert await _collect(logs, LogFilter(stream=Stream.STDOUT, tail_lines=3)) == b"b\nc\nd\n"
    assert await _collect(logs, LogFilter(since_ns=2)) == b"err\nc\nd\n"


async def test_live_followers_and_the_copy_get_everything_once(tmp_path: Path) -> None:
    path, hub, sink, logs = _copying(tmp_path)
    try:
        _append(path, Stream.STDOUT, 1, b"old1\nold2\n")
        hub.track(JOB, path)
        logs.start_copy(JOB)
        early = asyncio.create_task(_collect(logs, LogFilter()))
        tail = asyncio.create_task(_collect(logs, LogFilter(tail_lines=1)))
        # Sizes around the readers' buffer sizes: small, grown, larger than a chunk.
        sizes = [5, 70_000, 1, 1_500_000, 300_000, 9]
        expected = [(Stream.STDOUT, 1, b"old1\nold2\n")]
        await asyncio.sleep(0.01)  # the readers catch up with the history
        for i, size in enumerate(sizes, start=2):
            stream = Stream.STDERR if i % 2 else Stream.STDOUT
            data = bytes([65 + i]) * (size - 1) + b"\n"
            _append(path, stream, i, data)
            expected.append((stream, i, data))
            await asyncio.sleep(0.01)
        late = asyncio.create_task(_collect(logs, LogFilter()))
        await asyncio.sleep(0.05)
        hub.finish(JOB)
        whole = b"".join(d for _, _, d in expected)
        assert await asyncio.wait_for(early, 10) == whole
        assert await asyncio.wait_for(late, 10) == whole
        # The tail cuts only what was written before the reader caught up.
        assert await asyncio.wait_for(tail, 10) == whole.removeprefix(b"old1\n")
        for _ in range(100):
            if sink.finished:
                break
            await asyncio.sleep(0.01)
        assert sink.finished == [JOB]
        assert sink.records == expected
        assert not path.exists()  # acknowledged by persist: the local copy is gone
    finally:
        await logs.close()
        hub.close()


async def test_tail_of_a_history_read_in_many_batches(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    lines = [bytes([97 + i % 26]) * 700_000 + b"\n" for i in range(12)]  # ~8 MB: several reads
    for i, line in enumerate(lines):
        _append(path, Stream.STDOUT, i, line[:300_000])
        _append(path, Stream.STDOUT, i, line[300_000:])
    last = b"no newline yet"
    _append(path, Stream.STDOUT, 99, last)
    hub = LogHub()
    hub.track(JOB, path, finished=True)
    logs = JobLogs(hub, lambda _job: path)
    assert (
        await _collect(logs, LogFilter(tail_lines=3)) == lines[-2] + lines[-1] + b"no newline yet"
    )
    assert await _collect(logs, LogFilter(tail_lines=100)) == b"".join(lines) + b"no newline yet"


async def test_a_copy_drops_an_earlier_copy_unless_its_log_is_new(tmp_path: Path) -> None:
    """A copy that may follow an interrupted one (a restart, a log made
    earlier) first drops what persist holds of the log; the copy of a log its
    start has just created has nothing to drop and asks persist nothing."""
    path = tmp_path / "output.log"
    path.touch()
    hub = LogHub()
    hub.start()
    for new_log, deletes in ((False, 1), (True, 0)):
        sink = RecordingSink()
        logs = JobLogs(hub, lambda _job: path, sink=sink)
        try:
            hub.track(JOB, path)
            logs.start_copy(JOB, new_log=new_log)
            _append(path, Stream.STDOUT, 1, b"line\n")
            hub.finish(JOB)
            for _ in range(200):
                if sink.finished:
                    break
                await asyncio.sleep(0.01)
            assert sink.finished == [JOB]
            assert sink.log_deletes == deletes
            assert sink.records == [(Stream.STDOUT, 1, b"line\n")]
        finally:
            await logs.close()
        path.touch()
        hub.forget(JOB)


async def test_held_copies_start_in_batches_and_count_as_copying(tmp_path: Path) -> None:
    """A restart holds its jobs' copies until it serves: a held job counts as
    copying (so it is not collected), its copy starts with `start_held`, a
    batch per turn of the loop, and a job dropped meanwhile is not copied."""
    jobs = [f"job-{i}" for i in range(5)]
    for job in jobs:
        (tmp_path / job).mkdir()
        _append(tmp_path / job / "output.log", Stream.STDOUT, 1, job.encode())
    hub = LogHub()
    hub.start()
    sink = RecordingSink()
    logs = JobLogs(hub, lambda job: tmp_path / job / "output.log", sink=sink)
    try:
        for job in jobs:
            hub.track(job, tmp_path / job / "output.log", finished=True)
            logs.hold_copy(job)
        logs.drop_local("job-4")  # collected before the daemon served
        await asyncio.sleep(0.05)
        assert sink.log_deletes == 0 and sink.finished == []  # nothing started yet
        assert all(logs.copying(job) for job in jobs[:4]) and not logs.copying("job-4")

        # A call answered while the copies start sees some but not all begun.
        starting = asyncio.create_task(logs.start_held(batch=2))
        seen: list[int] = []
        while not starting.done() or len(seen) < 10:
            seen.append(sink.log_deletes)
            await asyncio.sleep(0)
        assert any(0 < count < 4 for count in seen), seen
        for _ in range(300):
            if len(sink.finished) == 4:
                break
            await asyncio.sleep(0.01)
        assert sorted(sink.finished) == jobs[:4]
    finally:
        await logs.close()


async def test_a_job_run_again_under_its_id_keeps_its_new_copy_known(tmp_path: Path) -> None:
    """A placed job the cluster queued again runs here again under its id:
    the earlier run's copy, cancelled by that run's delete, ends after the
    new copy began and must not take the new copy's entry with it (a later
    delete would then miss the new copy, and its end would mark the next
    run's log as stored and remove it)."""
    path, hub, sink, logs = _copying(tmp_path)
    try:
        hub.track(JOB, path)
        logs.start_copy(JOB, new_log=True)
        await asyncio.sleep(0.02)
        logs.delete(JOB)  # the earlier run goes, then the new one starts
        hub.track(JOB, path)
        logs.start_copy(JOB, new_log=True)
        await asyncio.sleep(0.05)  # the cancelled copy has ended by now
        assert logs.copying(JOB)
        logs.delete(JOB)
        await asyncio.sleep(0.05)
        assert not logs.copying(JOB)
        assert sink.finished == []  # cancelled, not left to finish on its own
        assert path.exists()
    finally:
        await logs.close()
