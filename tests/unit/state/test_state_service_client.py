"""StateService and StateClient over a real Unix socket, in one process."""

from __future__ import annotations

import asyncio
import logging
import socket
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.state.backends.base import StateBackendError
from joblet.state.client import StateClient, StateUnavailable
from joblet.state.retry import WritePolicy
from joblet.state.service import StateService, StateServiceError
from joblet.testing.state import MemoryBackend

FAST = WritePolicy(timeout_s=0.5, retries=2, backoff_s=0.01, max_backoff_s=0.05)


def job(job_id: str, status: JobStatus = JobStatus.RUNNING, exit_code: int = 0) -> Job:
    return Job(id=job_id, spec=JobSpec(command="true"), status=status, exit_code=exit_code)


class RecordingBackend(MemoryBackend):
    """Memory backend that logs every write and can be told to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, str, int]] = []  # (op, job id, exit code)
        self.failures_left = 0

    def _maybe_fail(self) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise StateBackendError("injected failure")

    async def put(self, job_id: str, record: bytes, ttl_s: float | None = None) -> None:
        self._maybe_fail()
        await super().put(job_id, record, ttl_s)
        from joblet.jobs.serialization import job_from_json

        self.ops.append(("put", job_id, job_from_json(record).exit_code))

    async def delete(self, job_id: str) -> None:
        self._maybe_fail()
        await super().delete(job_id)
        self.ops.append(("delete", job_id, 0))


@asynccontextmanager
async def serving(backend: MemoryBackend, path: Path) -> AsyncIterator[StateService]:
    async with StateService(backend, path, FAST) as service:
        yield service


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "run" / "state-ipc.sock"


async def test_events_arrive_in_order(sock: Path) -> None:
    backend = RecordingBackend()
    async with serving(backend, sock):
        client = await StateClient.connect(sock, window=16)
        expected = []
        for i in range(600):
            job_id = f"j{i % 40}"
            if i % 97 == 96:
                client.delete(job_id)
                expected.append(("delete", job_id, 0))
            else:
                client.put(job(job_id, exit_code=i))
                expected.append(("put", job_id, i))
        assert await client.flush(10)
        await client.close()
    assert backend.ops == expected
    assert client.dropped == 0


async def test_socket_is_private_and_a_stale_one_is_replaced(sock: Path) -> None:
    sock.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()  # the file stays, nobody listens
    async with serving(MemoryBackend(), sock):
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        with pytest.raises(StateServiceError, match="another state helper"):
            async with serving(MemoryBackend(), sock):
                pass
    assert not sock.exists()


async def test_a_file_in_the_way_is_not_removed(sock: Path) -> None:
    sock.parent.mkdir(parents=True)
    sock.write_text("precious")
    with pytest.raises(StateServiceError, match="not a socket"):
        async with serving(MemoryBackend(), sock):
            pass
    assert sock.read_text() == "precious"


async def test_transient_backend_failures_are_retried(sock: Path) -> None:
    backend = RecordingBackend()
    backend.failures_left = 2  # within FAST's 3 attempts
    async with serving(backend, sock):
        client = await StateClient.connect(sock)
        client.put(job("a", exit_code=1))
        client.put(job("b", exit_code=2))
        assert await client.flush(5)
        await client.close()
    assert backend.ops == [("put", "a", 1), ("put", "b", 2)]


async def test_a_write_failing_for_good_is_replayed_in_order_later(
    sock: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RecordingBackend()
    backend.failures_left = 7  # more than one request's 3 attempts: an Error answer
    async with serving(backend, sock):
        client = await StateClient.connect(sock, max_backoff_s=0.05)
        for i in range(5):
            client.put(job("a", exit_code=i))
        assert await client.flush(10)
        await client.close()
    assert [code for _, _, code in backend.ops] == [0, 1, 2, 3, 4]
    assert "failed 3 times" in caplog.text


async def test_client_buffers_while_the_helper_is_away(
    sock: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await StateClient.connect(sock, buffer_size=20, max_backoff_s=0.05)
    for round_ in range(5):  # 50 events for 10 jobs: coalesced, nothing lost
        for i in range(10):
            client.put(job(f"j{i}", exit_code=round_))
    assert client.dropped == 0
    assert client.pending <= 20
    backend = RecordingBackend()
    async with serving(backend, sock):
        assert await client.flush(5)
        assert {j.id: j.exit_code for j in await client.load_all(5)} == {
            f"j{i}": 4 for i in range(10)
        }
    with caplog.at_level(logging.ERROR):
        for i in range(30):  # 30 distinct jobs into 20 places: 10 dropped, said loudly
            client.put(job(f"k{i}"))
    assert client.dropped == 10
    assert "buffer overflow" in caplog.text
    await client.close(timeout=0.1)


async def test_load_all_times_out_without_a_helper(sock: Path) -> None:
    client = await StateClient.connect(sock)
    with pytest.raises(StateUnavailable, match="did not list jobs"):
        await client.load_all(timeout=0.3)
    await client.close(timeout=0.1)


async def test_load_all_skips_unreadable_records(
    sock: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = MemoryBackend()
    await backend.put("bad", b"{broken")
    await backend.put("good", b'{"id":"good","status":"COMPLETED","spec":{"command":"x"}}')
    async with serving(backend, sock):
        client = await StateClient.connect(sock)
        jobs = await client.load_all(timeout=5)
        await client.close()
    assert [j.id for j in jobs] == ["good"]
    assert "unreadable record of job bad" in caplog.text


async def test_put_after_close_is_counted_not_lost_silently(sock: Path) -> None:
    client = await StateClient.connect(sock)
    await client.close(timeout=0.1)
    client.put(job("late"))
    assert client.dropped == 1


async def test_slow_helper_never_blocks_put(sock: Path) -> None:
    class SlowBackend(MemoryBackend):
        async def put(self, job_id: str, record: bytes, ttl_s: float | None = None) -> None:
            await asyncio.sleep(0.2)
            await super().put(job_id, record, ttl_s)

    async with serving(SlowBackend(), sock):
        client = await StateClient.connect(sock)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(1000):
            client.put(job(f"j{i}"))
        # Blocked puts would take 0.2 s each (200 s in all): the bound leaves a
        # loaded host all the time it needs and still catches 25 blocked ones.
        assert loop.time() - started < 5
        await client.close(timeout=0.1)


async def test_stored_waits_for_the_events_so_far_only(sock: Path) -> None:
    client = await StateClient.connect(sock, max_backoff_s=0.05)
    client.put(job("early"))
    assert not await client.stored(0.2)  # no helper yet: not stored
    backend = RecordingBackend()
    async with serving(backend, sock):
        waiting = asyncio.ensure_future(client.stored(5))
        for i in range(20):  # a stream after the call does not hold it back
            client.put(job(f"later-{i}"))
        assert await waiting
        assert ("put", "early", 0) in backend.ops
    # The helper went a moment ago: close's cancel meets the lost connection,
    # and must still end the client (not leave it reconnecting for ever).
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(client.close(timeout=1), 5)
    assert loop.time() - started < 3


async def test_stored_sends_at_once_in_a_busy_stream(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A linger long enough to see: a waiter must not sit it out.
    monkeypatch.setattr("joblet.state.client.LINGER_S", 30.0)
    backend = RecordingBackend()
    async with serving(backend, sock):
        client = await StateClient.connect(sock, max_backoff_s=0.05)
        client.put(job("first"))
        assert await client.stored(10)  # a lone event goes out at once
        client.put(job("second"))  # the stream is busy now: this one would linger
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await client.stored(20)
        assert loop.time() - started < 10
        assert ("put", "second", 0) in backend.ops
        await client.close(timeout=1)
