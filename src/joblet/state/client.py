"""The daemon's side of the state helper: fire-and-forget writes that are never lost.

`put(job)` and `delete(job_id)` only append to an `EventBuffer` and return at
once; a task owned by the client sends the events in order over the helper's
socket, those that piled up since the last send as one WriteBatch (stored in
one transaction), and drops them from the buffer when their ack arrives. When
the helper is down or restarts, the client reconnects with backoff and replays
every unacknowledged event in order (puts and deletes are idempotent, so an
event the helper stored but could not ack yet is harmless to send twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from joblet.api import state_pb2 as pb
from joblet.errors import Unavailable
from joblet.ipc.framing import FrameError, encode_frame, read_frame, split_frames
from joblet.jobs.model import Job
from joblet.jobs.serialization import SerializationError, job_from_json, job_to_json
from joblet.state.buffer import AddResult, BufferProtocolError, EventBuffer, StateEvent

log = logging.getLogger(__name__)

DEFAULT_BUFFER_SIZE = 10_000
DEFAULT_WINDOW = 256  # events sent but not yet acknowledged, per connection
LIST_READ_BYTES = 1024 * 1024
MAX_BATCH_BYTES = 1024 * 1024  # records per WriteBatch frame
# Under a steady stream of events the sender waits LINGER_S before each batch,
# so a few milliseconds of events share one frame, one transaction and one ack;
# a lone event (nothing sent for BUSY_S) goes out at once, and so does a batch
# someone waits on (`stored`: a job start waits for its record).
LINGER_S = 0.005
BUSY_S = 0.05


# Workflow records share the store with job records under keys of their own
# (job ids are UUIDs, so the two never meet).
WORKFLOW_KEY_PREFIX = "workflow:"


def workflow_key(workflow_id: str) -> str:
    return WORKFLOW_KEY_PREFIX + workflow_id


# Records of other parts of the daemon (collected-job batches), stored as given.
RECORD_KEY_PREFIXES = ("collected:",)


class StateUnavailable(Unavailable):
    """The state helper could not be reached or answered with an error."""


class _ConnectionLost(Exception):
    pass


@dataclass(frozen=True)
class Loaded:
    """What the store held at a start: jobs, and workflow records as blobs."""

    jobs: list[Job]
    workflows: list[tuple[str, bytes]]
    records: list[tuple[str, bytes]] = field(default_factory=list)  # RECORD_KEY_PREFIXES


class StateSink(Protocol):
    """What the job manager needs from state; `StateClient` and the test fake have it."""

    @property
    def dropped(self) -> int: ...

    def put(self, job: Job, ttl_s: float = 0.0) -> None: ...

    def delete(self, job_id: str) -> None: ...

    async def load_all(self, timeout: float) -> list[Job]: ...

    async def close(self, timeout: float = 5.0) -> None: ...

    async def stored(self, timeout: float) -> bool: ...

    def push(self) -> None: ...


class StateClient:
    def __init__(
        self,
        socket_path: Path,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        window: int = DEFAULT_WINDOW,
        max_backoff_s: float = 2.0,
    ) -> None:
        self._socket_path = socket_path
        self._buffer = EventBuffer(buffer_size)
        self._window = window
        self._max_backoff_s = max_backoff_s
        self._work = asyncio.Event()  # new events to send or room in the window
        self._progress = asyncio.Event()  # an ack arrived
        self._hurry = asyncio.Event()  # someone waits in stored(): no linger
        self._waiting = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._connected = False
        self._warned_full = False
        self._acked = 0
        self._last_send = -BUSY_S  # loop time of the last batch sent
        self._writer: asyncio.StreamWriter | None = None  # while connected

    @classmethod
    async def connect(
        cls,
        socket_path: Path,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        window: int = DEFAULT_WINDOW,
        max_backoff_s: float = 2.0,
    ) -> StateClient:
        """A running client. Returns at once: the helper may come up later."""
        client = cls(socket_path, buffer_size, window, max_backoff_s)
        client._task = asyncio.create_task(client._run(), name="state-client")
        return client

    @property
    def dropped(self) -> int:
        """Events lost because the buffer overflowed even after coalescing."""
        return self._buffer.dropped

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by the helper."""
        return len(self._buffer)

    @property
    def connected(self) -> bool:
        return self._connected

    def put(self, job: Job, ttl_s: float = 0.0) -> None:
        """Record `job`'s current state; never blocks."""
        self._add(job.id, job_to_json(job), ttl_s)

    def delete(self, job_id: str) -> None:
        """Forget `job_id`; never blocks."""
        self._add(job_id, None, 0.0)

    def put_workflow(self, workflow_id: str, record: bytes) -> None:
        """Record a workflow (an opaque blob); never blocks. Ordered with job events."""
        self._add(workflow_key(workflow_id), record, 0.0)

    def delete_workflow(self, workflow_id: str) -> None:
        self._add(workflow_key(workflow_id), None, 0.0)

    def put_record(self, key: str, record: bytes) -> None:
        """Store a record under `key` (one of RECORD_KEY_PREFIXES); never blocks."""
        self._add(key, record, 0.0)

    def delete_record(self, key: str) -> None:
        self._add(key, None, 0.0)

    def _add(self, job_id: str, record: bytes | None, ttl_s: float) -> None:
        if self._task is None or self._task.done():
            log.error("state: client is closed; event for job %s not recorded", job_id)
            self._buffer.dropped += 1
            return
        self._report(self._buffer.add(job_id, record, ttl_s))
        self._work.set()

    def _report(self, result: AddResult) -> None:
        if result.coalesced and not self._warned_full:
            self._warned_full = True
            log.warning(
                "state: buffer full (%d events) while the helper is away; keeping only "
                "the latest event per job from now on",
                self._buffer.capacity,
            )
        if result.dropped is not None:
            log.error(
                "state: buffer overflow: %d jobs waiting for the helper; dropped the "
                "oldest event (job %s); %d events dropped so far",
                len(self._buffer),
                result.dropped.job_id,
                self._buffer.dropped,
            )

    async def flush(self, timeout: float) -> bool:
        """Wait until every event so far is acknowledged; False on timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self._buffer):
                    self._progress.clear()
                    await self._progress.wait()
        return not len(self._buffer)

    async def stored(self, timeout: float) -> bool:
        """Wait until every event added so far is acknowledged (later ones are
        not waited for, so a steady stream cannot hold the caller); False on
        timeout. An event dropped by an overflow no longer counts."""
        target = self._buffer.last_seq
        self._waiting += 1
        self._hurry.set()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    while self._buffer.holds_through(target):
                        self._progress.clear()
                        await self._progress.wait()
        finally:
            self._waiting -= 1
            if not self._waiting:
                self._hurry.clear()
        return not self._buffer.holds_through(target)

    async def close(self, timeout: float = 5.0) -> None:
        """Flush for up to `timeout` seconds, then stop; unsent events are logged."""
        if self._task is None:
            return
        if not await self.flush(timeout):
            log.error(
                "state: closing with %d events the helper has not acknowledged",
                len(self._buffer),
            )
        self._closing = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def load_all(self, timeout: float) -> list[Job]:
        """Every job the helper's backend holds; StateUnavailable after `timeout`."""
        return (await self.load(timeout)).jobs

    async def load(self, timeout: float) -> Loaded:
        """Every job and workflow record the helper's backend holds;
        StateUnavailable after `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                records = await self._list_patiently()
        except TimeoutError as exc:
            raise StateUnavailable(
                f"state helper at {self._socket_path} did not list jobs within {timeout:g}s"
            ) from exc
        others = [r for r in records if r[0].startswith(RECORD_KEY_PREFIXES)]
        jobs = [
            r for r in records if not r[0].startswith((WORKFLOW_KEY_PREFIX, *RECORD_KEY_PREFIXES))
        ]
        workflows = [
            (key.removeprefix(WORKFLOW_KEY_PREFIX), blob)
            for key, blob in records
            if key.startswith(WORKFLOW_KEY_PREFIX)
        ]
        return Loaded(await _decode_records(jobs), workflows, others)

    async def _list_patiently(self) -> list[tuple[str, bytes]]:
        delay = 0.05
        while True:
            try:
                return await list_records(self._socket_path)
            except (OSError, FrameError, _ConnectionLost) as exc:
                log.info("state: listing jobs failed (%s); retrying", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff_s)

    # ---- the sending task ------------------------------------------------

    async def _run(self) -> None:
        delay = 0.05
        failures = 0
        # Not `while True`: on Python 3.11 a TaskGroup whose child fails (the
        # connection lost) just as close() cancels this task raises the child's
        # error instead, `except*` takes it, and the cancel is gone; the flag
        # ends the loop anyway.
        while not self._closing:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self._socket_path))
            except OSError as exc:
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(
                    level,
                    "state: helper unreachable at %s (%s); %d events buffered",
                    self._socket_path,
                    exc,
                    len(self._buffer),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff_s)
                continue
            failures = 0
            acked_before = self._acked
            await self._serve_connection(reader, writer)
            if self._closing:
                return
            # A helper that fails every write must not be hammered: back off
            # unless this connection got something stored.
            delay = 0.05 if self._acked > acked_before else min(delay * 2, self._max_backoff_s)
            await asyncio.sleep(delay)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        log.info("state: connected to the helper; %d events to send", len(self._buffer))
        self._connected, self._warned_full = True, False
        self._writer = writer
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._send(writer))
                group.create_task(self._receive(reader))
        except* (OSError, FrameError, _ConnectionLost, BufferProtocolError) as errors:
            log.warning("state: connection to the helper lost: %s", errors.exceptions[0])
        finally:
            self._connected = False
            self._writer = None
            writer.close()
            requeued = self._buffer.requeue_inflight()
            if requeued:
                log.info("state: %d unacknowledged events will be replayed", requeued)

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        while True:
            self._work.clear()
            # One batch in flight at a time: what arrives while the helper
            # stores it goes out together next, so batches grow with the load
            # and an event on an idle connection still goes out at once.
            if self._buffer.inflight or not self._buffer.unsent:
                await self._work.wait()
                continue
            if self._busy() and self._buffer.unsent < self._window:
                # Let a busy stream fill the batch a little, unless someone waits.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), LINGER_S)
                if self._buffer.inflight or not self._buffer.unsent:
                    continue  # push() sent it meanwhile
            self._write_batch(writer)
            await writer.drain()

    def push(self) -> None:
        """Send what is unsent now, without waiting for the sender's turn of
        the loop, unless a batch is in flight: for a caller that will wait
        for its record (stored) and has work to do first."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        if self._buffer.inflight or not self._buffer.unsent:
            return
        self._write_batch(writer)

    def _write_batch(self, writer: asyncio.StreamWriter) -> None:
        batch = self._buffer.take(self._window)
        self._last_send = asyncio.get_running_loop().time()
        # One frame per batch (up to MAX_BATCH_BYTES): the helper stores it
        # in one transaction and answers one ack, not a round of each per event.
        writer.write(b"".join(encode_frame(_batch_request(part)) for part in _split(batch)))

    def _busy(self) -> bool:
        """Whether events have been streaming in (a batch went out a moment ago)."""
        return asyncio.get_running_loop().time() - self._last_send < BUSY_S

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        while True:
            response = await read_frame(reader, pb.StateResponse)
            if response is None:
                raise _ConnectionLost("the helper closed the connection")
            kind = response.WhichOneof("body")
            if kind == "error":
                raise _ConnectionLost(
                    f"helper failed event {response.error.seq}: {response.error.message}"
                )
            if kind != "ack":
                raise _ConnectionLost(f"unexpected {kind!r} answer to a write")
            self._acked += self._buffer.ack_through(response.ack.seq)
            self._progress.set()
            self._work.set()  # room in the window


def _split(events: list[StateEvent]) -> list[list[StateEvent]]:
    """`events` in runs of at most MAX_BATCH_BYTES of records (at least one each)."""
    parts: list[list[StateEvent]] = [[]]
    size = 0
    for event in events:
        record = len(event.record or b"")
        if parts[-1] and size + record > MAX_BATCH_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(event)
        size += record
    return parts


def _batch_request(events: list[StateEvent]) -> pb.StateRequest:
    if len(events) == 1:
        return _request(events[0])
    batch = pb.WriteBatch(writes=[_request(event) for event in events])
    return pb.StateRequest(seq=events[-1].seq, batch=batch)


def _request(event: StateEvent) -> pb.StateRequest:
    if event.record is None:
        return pb.StateRequest(seq=event.seq, delete=pb.DeleteJob(job_id=event.job_id))
    put = pb.PutJob(job_id=event.job_id, record_json=event.record, ttl_seconds=event.ttl_s)
    return pb.StateRequest(seq=event.seq, put=put)


async def list_records(socket_path: Path) -> list[tuple[str, bytes]]:
    """Every (job id, record) the helper at `socket_path` holds, over a new connection."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    try:
        writer.write(encode_frame(pb.StateRequest(seq=0, list=pb.ListJobs())))
        await writer.drain()
        records: list[tuple[str, bytes]] = []
        pending = bytearray()
        # A listing is one frame per job: read it in large pieces and parse the
        # frames from the buffer (10,000 jobs at a daemon start).
        while chunk := await reader.read(LIST_READ_BYTES):
            pending += chunk
            bodies, used = split_frames(pending)
            del pending[:used]
            for body in bodies:
                response = pb.StateResponse.FromString(body)
                kind = response.WhichOneof("body")
                if kind == "record":
                    records.append((response.record.job_id, response.record.record_json))
                elif kind == "end":
                    return records
                elif kind == "error":
                    raise _ConnectionLost(f"helper could not list jobs: {response.error.message}")
        raise _ConnectionLost("the helper closed the connection while listing")
    finally:
        writer.close()


# Records decoded per turn of the loop: a start decodes tens of thousands while
# it also brings up the launcher and the port; one long decode held those up.
DECODE_BATCH = 500


async def _decode_records(records: list[tuple[str, bytes]]) -> list[Job]:
    jobs: list[Job] = []
    for index, (job_id, blob) in enumerate(records):
        if index and index % DECODE_BATCH == 0:
            await asyncio.sleep(0)
        try:
            jobs.append(job_from_json(blob))
        except SerializationError as exc:
            log.error("state: skipping the unreadable record of job %s: %s", job_id, exc)
    return jobs
