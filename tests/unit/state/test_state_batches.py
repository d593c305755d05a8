"""Write batches: the client sends what piled up as one WriteBatch, the helper
stores it in one transaction and answers one ack covering all of it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from joblet.api import state_pb2 as pb
from joblet.ipc.framing import encode_frame, read_frame
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.serialization import job_from_json, job_to_json
from joblet.state.backends.base import BatchWriter, StateBackendError, Write
from joblet.state.backends.sqlite import SqliteBackend
from joblet.state.buffer import BufferProtocolError, EventBuffer
from joblet.state.client import StateClient
from joblet.state.retry import WritePolicy
from joblet.state.service import StateService
from joblet.testing.state import MemoryBackend

FAST = WritePolicy(timeout_s=0.5, retries=2, backoff_s=0.01, max_backoff_s=0.05)


def job(job_id: str, exit_code: int = 0) -> Job:
    spec = JobSpec(command="true")
    return Job(id=job_id, spec=spec, status=JobStatus.COMPLETED, exit_code=exit_code)


class BatchRecordingBackend(MemoryBackend):
    """Records each batch it is handed; can fail the next N batches."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[tuple[str, int | None]]] = []
        self.failures_left = 0

    async def write_many(self, writes: Sequence[Write]) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise StateBackendError("injected batch failure")
        batch: list[tuple[str, int | None]] = []
        for job_id, record, ttl in writes:
            if record is None:
                await self.delete(job_id)
                batch.append((job_id, None))
            else:
                await self.put(job_id, record, ttl)
                batch.append((job_id, job_from_json(record).exit_code))
        self.batches.append(batch)


def test_one_ack_covers_every_event_up_to_it() -> None:
    buffer = EventBuffer(100)
    for name in "abcde":
        buffer.add(name, b"r")
    sent = buffer.take(window=10)
    assert buffer.ack_through(sent[2].seq) == 3
    assert buffer.inflight == 2
    with pytest.raises(BufferProtocolError):
        buffer.ack_through(sent[1].seq)  # already acknowledged
    with pytest.raises(BufferProtocolError):
        buffer.ack_through(sent[-1].seq + 1)  # never sent
    assert buffer.ack_through(sent[4].seq) == 2
    assert len(buffer) == 0


def test_sqlite_backend_is_a_batch_writer_and_memory_is_not() -> None:
    assert issubclass(SqliteBackend, BatchWriter)
    assert not isinstance(MemoryBackend(), BatchWriter)


async def test_sqlite_batch_is_one_transaction_in_order(tmp_path: Path) -> None:
    backend = await SqliteBackend.open(tmp_path / "state.db")
    try:
        await backend.write_many([("a", b"1", None), ("b", b"2", 60.0), ("a", None, None)])
        assert await backend.list_all() == [("b", b"2")]
        with pytest.raises(StateBackendError):  # an unbindable id fails the whole batch
            await backend.write_many([("c", b"3", None), (object(), b"x", None)])  # type: ignore[list-item]
        assert await backend.list_all() == [("b", b"2")]  # "c" was rolled back
    finally:
        await backend.close()
    rows = sqlite3.connect(tmp_path / "state.db").execute("SELECT job_id FROM jobs").fetchall()
    assert rows == [("b",)]


async def test_events_that_pile_up_travel_as_batches_in_order(tmp_path: Path) -> None:
    backend = BatchRecordingBackend()
    sock = tmp_path / "state.sock"
    async with StateService(backend, sock, FAST):
        client = await StateClient.connect(sock, window=64)
        expected: list[tuple[str, int | None]] = []
        for i in range(300):
            job_id = f"j{i % 25}"
            if i % 50 == 49:
                client.delete(job_id)
                expected.append((job_id, None))
            else:
                client.put(job(job_id, exit_code=i))
                expected.append((job_id, i))
            if i % 60 == 0:
                await asyncio.sleep(0)  # let a first batch go out on its own
        assert await client.flush(10)
        await client.close()
    assert [write for batch in backend.batches for write in batch] == expected
    assert len(backend.batches) < 50  # not one round per event
    assert max(len(batch) for batch in backend.batches) <= 64  # the window


async def test_a_failed_batch_stores_nothing_and_is_replayed(tmp_path: Path) -> None:
    backend = BatchRecordingBackend()
    backend.failures_left = 3  # all 3 attempts of the first batch: an Error answer
    sock = tmp_path / "state.sock"
    async with StateService(backend, sock, FAST):
        client = await StateClient.connect(sock, max_backoff_s=0.05)
        for i in range(10):
            client.put(job(f"j{i}", exit_code=i))
        assert await client.flush(10)
        await client.close()
    assert [code for batch in backend.batches for _, code in batch] == list(range(10))


async def test_helper_answers_a_batch_with_one_ack_and_a_failure_with_its_first_seq(
    tmp_path: Path,
) -> None:
    backend = BatchRecordingBackend()
    sock = tmp_path / "state.sock"
    async with StateService(backend, sock, FAST):
        reader, writer = await asyncio.open_unix_connection(str(sock))
        record = job_to_json(job("a"))
        writes = [
            pb.StateRequest(seq=7, put=pb.PutJob(job_id="a", record_json=record)),
            pb.StateRequest(seq=8, delete=pb.DeleteJob(job_id="a")),
        ]
        request = pb.StateRequest(seq=8, batch=pb.WriteBatch(writes=writes))
        writer.write(encode_frame(request))
        answer = await read_frame(reader, pb.StateResponse)
        assert answer is not None and answer.ack.seq == 8
        backend.failures_left = 3
        bad = pb.StateRequest(seq=10, batch=pb.WriteBatch(writes=[
            pb.StateRequest(seq=9, put=pb.PutJob(job_id="b", record_json=record)),
            pb.StateRequest(seq=10, put=pb.PutJob(job_id="c", record_json=record)),
        ]))  # fmt: skip
        writer.write(encode_frame(bad))
        answer = await read_frame(reader, pb.StateResponse)
        assert answer is not None and answer.WhichOneof("body") == "error"
        assert answer.error.seq == 9
        assert await read_frame(reader, pb.StateResponse) is None  # closed after an error
        writer.close()
    assert await backend.list_all() == []
    assert backend.batches == [[("a", 0), ("a", None)]]


async def test_push_sends_at_once_without_waiting_for_the_senders_turn(tmp_path: Path) -> None:
    backend = BatchRecordingBackend()
    sock = tmp_path / "state.sock"
    async with StateService(backend, sock, FAST):
        client = await StateClient.connect(sock)
        client.put(job("warm"))
        assert await client.stored(5)  # connected, and a batch went out a moment ago
        client.put(job("now"))
        client.push()
        # No turn of the loop yet: only push can have handed it over.
        assert client._buffer.inflight == 1
        assert await client.stored(5)
        # Pushed while the sender lingers or while a batch is in flight:
        # every event still goes out once, in order.
        for i in range(40):
            client.put(job(f"j{i % 7}", exit_code=i))
            client.push()
            if i % 3 == 0:
                await asyncio.sleep(0)
        assert await client.flush(10)
        await client.close()
    # Each id's last event is the one stored: none was sent out of order.
    records = await backend.list_all()
    stored = {job_id: job_from_json(record).exit_code for job_id, record in records}
    assert {k: v for k, v in stored.items() if k.startswith("j")} == {
        f"j{k}": max(i for i in range(40) if i % 7 == k) for k in range(7)
    }
