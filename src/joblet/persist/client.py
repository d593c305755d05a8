"""The daemon's side of persist: a buffered, never-blocking sender.

`PersistClient` turns each call into one `Request` frame and queues it; a
background sender owns the connection, writes the queue in order, and drops
a frame only when persist acknowledges it. When persist is down, slow or out
of disk, frames stay queued (up to `max_buffer_bytes`) and are replayed in
order on the next connection; persist skips any it already stored (it keeps
the last (session, seq) per job). Past the bound, new data is dropped, logged,
and counted in `dropped_bytes`. All methods run on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from joblet.api import persist_pb2 as pb
from joblet.ipc.framing import FrameError, encode_frame, read_frame
from joblet.logs.format import Framed
from joblet.persist.query_client import MetricSample, PersistQueryClient
from joblet.persist.wire import log_batch_frame, packed_log_frame

__all__ = ["MetricSample", "PersistClient", "PersistQueryClient"]

log = logging.getLogger(__name__)

DROP_LOG_INTERVAL_S = 10.0
DRAIN_ABOVE = 1 << 20


class _Refused(Exception):
    """Persist could not store a request (disk full); retry after a back-off."""


@dataclass(frozen=True)
class _Frame:
    seq: int
    data: bytes


class PersistClient:
    def __init__(
        self,
        socket_path: Path,
        max_buffer_bytes: int = 64 * 1000**2,
        *,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
    ) -> None:
        self.socket_path = socket_path
        self.max_buffer_bytes = max_buffer_bytes
        self.session = uuid.uuid4().hex
        self.dropped_bytes = 0
        self.dropped_batches = 0
        self.buffered_bytes = 0
        self.connected = False
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._queue: deque[_Frame] = deque()
        self._sent = 0  # frames at the head of the queue written on this connection
        self._seq = 0
        self._wakeup = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._progress = asyncio.Event()  # set at every acknowledgement
        self._room = asyncio.Event()  # set while `has_room`
        self._room.set()
        self._group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_drop_log = 0.0

    async def __aenter__(self) -> PersistClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._task = self._group.create_task(self._run())

    async def close(self, timeout: float = 5.0) -> None:
        """Give the sender `timeout` seconds to store what is queued, then stop."""
        if not await self.flush(timeout):
            log.warning(
                "persist client closing with %d batch(es), %d bytes not stored",
                len(self._queue),
                self.buffered_bytes,
            )
        if self._task is not None and self._group is not None:
            self._closing = True
            self._task.cancel()
            await self._group.__aexit__(None, None, None)
            self._task = self._group = None

    async def flush(self, timeout: float) -> bool:
        """Wait until persist acknowledged everything queued; False on timeout."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), timeout)
        return self._empty.is_set()

    async def stored(self, timeout: float) -> bool:
        """Wait until everything queued so far is acknowledged; what is
        queued later is not waited for, so other jobs' steady stream (every
        tick's samples) cannot hold the caller. False on timeout."""
        target = self._seq
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._holds_through(target):
                    self._progress.clear()
                    await self._progress.wait()
        return not self._holds_through(target)

    def _holds_through(self, seq: int) -> bool:
        return bool(self._queue) and self._queue[0].seq <= seq

    def send_logs(self, job_id: str, records: Sequence[Framed]) -> None:
        """Queue the records as one frame (their output is copied now)."""
        self._seq += 1
        self._enqueue_frame(self._seq, log_batch_frame(self._seq, job_id, records), bounded=True)

    def send_packed_logs(self, job_id: str, packed: bytes | memoryview) -> None:
        """Whole records in output.log's layout (joblet.logs.format), as read
        from the file: persist checks them and stores them as they are."""
        self._seq += 1
        self._enqueue_frame(self._seq, packed_log_frame(self._seq, job_id, packed), bounded=True)

    def has_room(self) -> bool:
        """Whether the buffer is below half its bound: bulk senders wait for this
        instead of overflowing it (which would drop data)."""
        return self.buffered_bytes < self.max_buffer_bytes // 2

    async def wait_for_room(self) -> None:
        """Until `has_room`: woken by the acks that free it, so any number of
        waiting senders cost nothing while persist is away."""
        while not self.has_room():
            await self._room.wait()

    def send_metric(self, job_id: str, timestamp_ns: int, payload: bytes) -> None:
        sample = pb.MetricSample(timestamp_ns=timestamp_ns, payload=payload)
        batch = pb.MetricBatch(job_id=job_id, samples=[sample])
        self._enqueue(pb.Request(metrics=batch), bounded=True)

    def send_metrics(self, records: Sequence[tuple[str, int, bytes]]) -> None:
        """One tick's samples of many jobs, (job_id, timestamp_ns, payload)
        each, as one request: persist applies them in one go."""
        batches: dict[str, pb.MetricBatch] = {}
        for job_id, timestamp_ns, payload in records:
            batch = batches.get(job_id)
            if batch is None:
                batch = batches[job_id] = pb.MetricBatch(job_id=job_id)
            batch.samples.append(pb.MetricSample(timestamp_ns=timestamp_ns, payload=payload))
        if batches:
            tick = pb.MetricTick(batches=list(batches.values()))
            self._enqueue(pb.Request(metric_tick=tick), bounded=True)

    def job_finished(self, job_id: str) -> None:
        self._enqueue(pb.Request(job_finished=pb.JobFinished(job_id=job_id)), bounded=False)

    def metrics_finished(self, job_id: str) -> None:
        """After the job's final sample: its metric history is complete."""
        finished = pb.JobFinished(job_id=job_id, metrics_only=True)
        self._enqueue(pb.Request(job_finished=finished), bounded=False)

    def delete(self, job_id: str) -> None:
        self._enqueue(pb.Request(delete_job=pb.DeleteJob(job_id=job_id)), bounded=False)

    def delete_logs(self, job_id: str) -> None:
        """Drop the job's stored log only, keeping its metric history."""
        request = pb.DeleteJob(job_id=job_id, logs_only=True)
        self._enqueue(pb.Request(delete_job=request), bounded=False)

    def _enqueue(self, request: pb.Request, *, bounded: bool) -> None:
        # Control requests are tiny and must not be lost, so only data counts
        # against the bound.
        self._seq += 1
        request.seq = self._seq
        self._enqueue_frame(self._seq, encode_frame(request), bounded=bounded)

    def _enqueue_frame(self, seq: int, frame: bytes, *, bounded: bool) -> None:
        if bounded and self.buffered_bytes + len(frame) > self.max_buffer_bytes:
            self._drop(len(frame))
            return
        self._queue.append(_Frame(seq, frame))
        self.buffered_bytes += len(frame)
        if not self.has_room():
            self._room.clear()
        self._empty.clear()
        self._wakeup.set()

    def _drop(self, size: int) -> None:
        self.dropped_bytes += size
        self.dropped_batches += 1
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.warning(
                "persist buffer full (%d bytes): dropping history; %d bytes in %d batches "
                "dropped so far (persist %s)",
                self.max_buffer_bytes,
                self.dropped_bytes,
                self.dropped_batches,
                "connected" if self.connected else "unreachable",
            )

    def _acked(self, seq: int) -> None:
        while self._queue and self._queue[0].seq <= seq:
            frame = self._queue.popleft()
            self.buffered_bytes -= len(frame.data)
            self._sent -= 1
        self._progress.set()
        if not self._queue:
            self._empty.set()
        if self.has_room():
            self._room.set()

    async def _run(self) -> None:
        delay, outage_logged = self._backoff[0], False
        # Not `while True`: on Python 3.11 a TaskGroup whose connection is lost
        # just as close() cancels this task raises the connection's error
        # instead, `except*` takes it, and the cancel is gone; the flag ends
        # the loop anyway.
        while not self._closing:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
            except OSError as exc:
                if not outage_logged:
                    log.warning("persist unreachable at %s (%s); buffering", self.socket_path, exc)
                    outage_logged = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            if outage_logged:
                log.info("persist is back; replaying %d batch(es)", len(self._queue))
                outage_logged = False
            if await self._connection(reader, writer):
                delay = self._backoff[0]
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one connection until it fails; True if anything was acknowledged."""
        self.connected, self._sent = True, 0
        before = self._seq_acked_marker()
        try:
            writer.write(encode_frame(pb.Request(hello=pb.Hello(session=self.session))))
            async with asyncio.TaskGroup() as group:
                group.create_task(self._write_loop(writer))
                await self._read_acks(reader)
        except* _Refused as group_exc:
            log.error("persist refused a batch: %s; retrying", group_exc.exceptions[0])
        except* (OSError, FrameError) as group_exc:
            log.warning("persist connection lost: %s", group_exc.exceptions[0])
        finally:
            self.connected = False
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return self._seq_acked_marker() != before

    def _seq_acked_marker(self) -> int:
        return self._queue[0].seq if self._queue else self._seq + 1

    async def _write_loop(self, writer: asyncio.StreamWriter) -> None:
        while True:
            while self._sent < len(self._queue):
                writer.write(self._queue[self._sent].data)
                self._sent += 1
                if writer.transport.get_write_buffer_size() > DRAIN_ABOVE:
                    await writer.drain()
            await writer.drain()
            if self._sent >= len(self._queue):
                self._wakeup.clear()
                await self._wakeup.wait()

    async def _read_acks(self, reader: asyncio.StreamReader) -> None:
        while (ack := await read_frame(reader, pb.Ack)) is not None:
            if not ack.ok:
                raise _Refused(ack.error)
            if ack.error:
                log.error("persist dropped request %d as invalid: %s", ack.seq, ack.error)
            self._acked(ack.seq)
        raise ConnectionResetError("persist closed the connection")
