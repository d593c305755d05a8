"""persist as a real child process, the daemon-side clients over real Unix sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from joblet.errors import NotFound, Unavailable
from joblet.logs.format import LogRecord, Stream
from joblet.persist.client import PersistClient, PersistQueryClient


class PersistProcess:
    def __init__(self, root: Path, persist: dict[str, object]) -> None:
        self.root = root
        self.config = root / "config.yml"
        self.config.write_text(yaml.safe_dump({"joblet": {"root": str(root)}, "persist": persist}))
        self.log = root / "persist.log"
        self.ipc = root / "run" / "persist-ipc.sock"
        self.grpc = root / "run" / "persist-grpc.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        started = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "joblet.persist", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        while time.monotonic() - started < 15:
            assert self.proc.poll() is None, self.log.read_text()
            if _newer(self.ipc, started) and _newer(self.grpc, started):
                return
            time.sleep(0.02)
        raise AssertionError(f"persist did not start:\n{self.log.read_text()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(10)


def _newer(path: Path, since: float) -> bool:
    try:
        return path.stat().st_mtime >= since - 1
    except FileNotFoundError:
        return False


@pytest.fixture
def persist(tmp_path: Path) -> Iterator[PersistProcess]:
    proc = PersistProcess(tmp_path, {"segmentSize": "16KB", "segmentTime": "1s"})
    proc.start()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.kill(signal.SIGTERM)


def _batch(job: int, start: int, n: int = 10) -> list[LogRecord]:
    return [
        LogRecord(
            Stream.STDERR if i % 5 == 0 else Stream.STDOUT,
            1_000_000 + i,
            b"job %d line %08d\n" % (job, i),
        )
        for i in range(start, start + n)
    ]


async def _all(query: PersistQueryClient, job: str, **kw: object) -> list[LogRecord]:
    return [r async for r in query.query_logs(job, **kw)]  # type: ignore[arg-type]


async def test_ingest_then_query(persist: PersistProcess) -> None:
    sent: list[LogRecord] = []
    async with PersistClient(persist.ipc) as client:
        for start in range(0, 3000, 10):
            batch = _batch(1, start)
            client.send_logs("job-1", batch)
            sent.extend(batch)
            if start % 1000 == 990:
                # Persist writes what has arrived as one group and rolls the
                # segment after a group: three groups of ~22 KB each roll it.
                assert await client.flush(10)
        client.send_metric("job-1", 5, b"sample-a")
        client.send_metric("job-1", 9, b"sample-b")
        client.send_metrics([("job-2", 5, b"two-a"), ("job-3", 5, b"three-a")])
        client.send_metrics([("job-2", 9, b"two-b"), ("job-3", 9, b"three-b")])
        client.job_finished("job-1")
        assert await client.flush(10)
    assert stat.S_IMODE(persist.ipc.stat().st_mode) == 0o600
    assert stat.S_IMODE(persist.grpc.stat().st_mode) == 0o600
    async with PersistQueryClient(persist.grpc) as query:
        assert await _all(query, "job-1") == sent
        assert await _all(query, "job-1", tail=3) == sent[-3:]
        errs = await _all(query, "job-1", stream=Stream.STDERR)
        assert errs == [r for r in sent if r.stream == Stream.STDERR]
        window = await _all(query, "job-1", since_ns=1_000_100, until_ns=1_000_199)
        assert window == sent[100:200]
        metrics = [m async for m in query.query_metrics("job-1", from_ns=6)]
        assert [(m.timestamp_ns, m.payload) for m in metrics] == [(9, b"sample-b")]
        # A tick's samples of many jobs (one request) land in each job's history.
        for job, name in (("job-2", b"two"), ("job-3", b"three")):
            stored = [(m.timestamp_ns, m.payload) async for m in query.query_metrics(job)]
            assert stored == [(5, name + b"-a"), (9, name + b"-b")]
        with pytest.raises(NotFound):
            await _all(query, "nope")
        stats = await query.stats()
        assert stats.jobs == 3 and stats.batches_written == 306
    assert len(list((persist.root / "logs" / "job-1").glob("seg-*.zst"))) > 1


async def test_sigkill_restart_loses_nothing_and_duplicates_nothing(
    persist: PersistProcess,
) -> None:
    import asyncio

    sent: list[LogRecord] = []
    async with PersistClient(persist.ipc, backoff_initial_s=0.02, backoff_max_s=0.2) as client:
        for round_ in range(400):
            batch = _batch(2, round_ * 10)
            client.send_logs("job-2", batch)
            sent.extend(batch)
            if round_ in (100, 250):
                persist.kill()  # SIGKILL: no segment finished, acks in flight
                assert client.buffered_bytes > 0 or round_ == 250
            if round_ in (150, 300):
                persist.start()  # the stale sockets are removed at start
            await asyncio.sleep(0.001)
        assert await client.flush(15)
        assert client.dropped_bytes == 0
    async with PersistQueryClient(persist.grpc) as query:
        got = await _all(query, "job-2")
        assert len(got) == len(sent)
        assert got == sent
        stats = await query.stats()
    assert "Traceback" not in persist.log.read_text()
    assert stats.write_errors == 0


async def test_bounded_buffer_drops_and_counts(tmp_path: Path) -> None:
    proc = PersistProcess(tmp_path, {})
    client = PersistClient(proc.ipc, max_buffer_bytes=4000, backoff_initial_s=0.02)
    await client.start()
    try:
        for start in range(0, 1000, 10):
            client.send_logs("job-3", _batch(3, start))
        assert client.dropped_bytes > 0
        assert 0 < client.buffered_bytes <= 4000
        kept = client.buffered_bytes
        proc.start()
        assert await client.flush(10)
        async with PersistQueryClient(proc.grpc) as query:
            got = await _all(query, "job-3")
        # the oldest data, in order, nothing missing inside it
        assert sum(len(r.data) for r in got) < kept
        assert got == _batch(3, 0, len(got))
    finally:
        await client.close(1)
        if proc.proc is not None:
            proc.kill(signal.SIGTERM)


async def test_query_client_reports_unavailable(tmp_path: Path) -> None:
    from joblet.errors import Unavailable

    async with PersistQueryClient(tmp_path / "absent.sock") as query:
        with pytest.raises(Unavailable):
            await _all(query, "x")


@pytest.mark.privileged
async def test_disk_full_is_reported_and_survived(tmp_path: Path) -> None:
    import asyncio

    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    logs = tmp_path / "logs"
    logs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(logs)], check=True)
    proc = PersistProcess(tmp_path, {"segmentSize": "4MB"})
    try:
        ballast = logs / "ballast"
        ballast.write_bytes(os.urandom(512 * 1024))
        proc.start()
        sent: list[LogRecord] = []
        async with PersistClient(proc.ipc, backoff_initial_s=0.02, backoff_max_s=0.1) as client:
            for i in range(80):  # ~640 KB of incompressible output: more than is free
                rec = [LogRecord(Stream.STDOUT, i, os.urandom(8000))]
                client.send_logs("job-4", rec)
                sent.extend(rec)
            assert not await client.flush(2)
            assert proc.proc is not None and proc.proc.poll() is None  # no crash
            assert "disk full" in proc.log.read_text()
            assert client.buffered_bytes > 0 and client.dropped_bytes == 0
            ballast.unlink()
            assert await client.flush(10)
        async with PersistQueryClient(proc.grpc) as query:
            assert await _all(query, "job-4") == sent
        await asyncio.sleep(0)
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill(signal.SIGTERM)
        subprocess.run(["umount", "-l", str(logs)], check=True)


@pytest.mark.slow  # over 15 s: make test-all runs it
async def test_query_client_reads_again_soon_after_persist_is_back(
    persist: PersistProcess,
) -> None:
    """A client whose connects failed for a while (persist restarting) must
    read again within a second or two of persist's return, not fail until
    gRPC's growing reconnect backoff has run out."""
    import asyncio

    async with PersistClient(persist.ipc) as client:
        client.send_logs("job-5", _batch(5, 0))
        assert await client.flush(10)
    async with PersistQueryClient(persist.grpc) as query:
        assert len(await _all(query, "job-5")) == 10
        persist.kill()
        for _ in range(3):  # failed connects, each making gRPC back off further
            with contextlib.suppress(Unavailable):
                await _all(query, "job-5")
        await asyncio.sleep(4)
        persist.start()
        assert len(await _all(query, "job-5")) == 10


async def test_wait_for_room_returns_when_acks_free_the_buffer(persist: PersistProcess) -> None:
    import asyncio

    assert persist.proc is not None
    async with PersistClient(persist.ipc, max_buffer_bytes=64 * 1024) as client:
        await client.wait_for_room()  # empty: at once
        persist.proc.send_signal(signal.SIGSTOP)
        try:
            start = 0
            while client.has_room():
                client.send_logs("job-6", _batch(6, start, 100))
                start += 100
            waiter = asyncio.ensure_future(client.wait_for_room())
            await asyncio.sleep(0.3)
            assert not waiter.done()
        finally:
            persist.proc.send_signal(signal.SIGCONT)
        await asyncio.wait_for(waiter, 10)
        assert client.has_room()
        assert await client.flush(10)
        assert client.dropped_bytes == 0


async def test_stop_with_a_sender_connected_is_clean(persist: PersistProcess) -> None:
    """Persist stopping while the daemon is connected logs no traceback, and
    the client still closes (its cancel meets the lost connection)."""
    import asyncio

    client = PersistClient(persist.ipc)
    await client.start()
    client.send_logs("job-7", _batch(7, 0))
    assert await client.flush(10)
    persist.kill(signal.SIGTERM)  # the client's connection is still open
    await asyncio.wait_for(client.close(timeout=1), 10)
    said = persist.log.read_text()
    assert "persist stopped" in said
    assert "Traceback" not in said, said


async def test_metrics_segments_roll_on_their_own_longer_time(tmp_path: Path) -> None:
    """A log segment is finished after segmentTime; a metrics segment after
    metricsSegmentTime (finishing one fsyncs it and rewrites its job's index:
    every 30 s for every running job, that was most of storing samples)."""
    persist = PersistProcess(tmp_path, {"segmentTime": "1s", "metricsSegmentTime": "1h"})
    persist.start()
    try:
        async with PersistClient(persist.ipc) as client:
            client.send_logs("job-1", _batch(1, 0))
            client.send_metric("job-1", 5, b"sample-a")
            assert await client.flush(10)
            deadline = time.monotonic() + 20
            logs_index = tmp_path / "logs" / "job-1" / "index.json"
            while not logs_index.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.5)  # a roll check or two past the metrics' first second
        assert logs_index.exists(), "the log segment was not finished after segmentTime"
        assert not (tmp_path / "metrics" / "job-1" / "index.json").exists()
    finally:
        persist.kill(signal.SIGTERM)


async def test_stored_waits_for_what_was_queued_not_for_what_comes_later(
    persist: PersistProcess,
) -> None:
    """A finished job's log copy waits for its own frames only: with other
    jobs' samples streaming in behind it, a wait for an empty queue (flush)
    could last until its timeout, and the log was then kept locally."""
    async with PersistClient(persist.ipc) as client:
        assert await client.flush(10)
        os.kill(persist.proc.pid, signal.SIGSTOP)  # nothing is acknowledged meanwhile
        try:
            client.send_logs("job-1", _batch(1, 0))
            waiting = asyncio.ensure_future(client.stored(20))
            for t in range(20):
                client.send_metric("job-2", t, b"later")
            await asyncio.sleep(0.2)
            assert not waiting.done()
        finally:
            os.kill(persist.proc.pid, signal.SIGCONT)
        stop_streaming = asyncio.Event()

        async def stream() -> None:  # other jobs' samples, without a pause
            t = 100
            while not stop_streaming.is_set():
                for _ in range(20):
                    t += 1
                    client.send_metric("job-2", t, b"later")
                await asyncio.sleep(0.001)

        streaming = asyncio.ensure_future(stream())
        try:
            assert await asyncio.wait_for(waiting, 20)
        finally:
            stop_streaming.set()
            await streaming
