"""One daemon connection to the state helper: requests in, answers out, in order.

The contract (proto/joblet/api/state.proto): requests are handled one at a
time in arrival order; each write is acknowledged by sequence number once the
backend has it; a write that fails for good is answered with Error and the
connection is closed before any later request is touched, so the daemon can
replay from the failed one without reordering a job's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from joblet.api import state_pb2 as pb
from joblet.ipc.framing import FrameError, encode_frame, read_frame
from joblet.state.backends.base import BatchWriter, StateBackend, StateBackendError, Write
from joblet.state.retry import WritePolicy, write_with_retry

log = logging.getLogger(__name__)


class RequestHandler:
    def __init__(self, backend: StateBackend, policy: WritePolicy) -> None:
        self._backend = backend
        self._batch_writer = backend if isinstance(backend, BatchWriter) else None
        self._policy = policy

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer requests until the peer hangs up or a write fails for good."""
        try:
            while (request := await read_frame(reader, pb.StateRequest)) is not None:
                if not await self._answer(request, writer):
                    break
        except FrameError as exc:
            log.warning("state: dropping a connection that sent a bad frame: %s", exc)
        except ConnectionError as exc:
            log.info("state: connection lost: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, request: pb.StateRequest, writer: asyncio.StreamWriter) -> bool:
        """Handle one request; False when the connection must close."""
        op = request.WhichOneof("op")
        try:
            if op == "put":
                await self._put(request.put)
            elif op == "delete":
                await self._delete(request.delete.job_id)
            elif op == "batch":
                await self._write_batch(request.batch)
            elif op == "list":
                await self._list(request.seq, writer)
                return True
            else:
                raise StateBackendError(f"unknown request {op!r}: is the helper older?")
        except StateBackendError as exc:
            log.error(
                "state: request %d (%s) failed, closing the connection: %s", request.seq, op, exc
            )
            # The daemon replays a failed batch whole, from its first write
            # (puts and deletes are idempotent, whatever part of it was stored).
            first = request.batch.writes[0].seq if op == "batch" and request.batch.writes else 0
            error = pb.Error(seq=first or request.seq, message=str(exc))
            writer.write(encode_frame(pb.StateResponse(error=error)))
            await writer.drain()
            return False
        writer.write(encode_frame(pb.StateResponse(ack=pb.Ack(seq=request.seq))))
        await writer.drain()
        return True

    async def _put(self, put: pb.PutJob) -> None:
        ttl = put.ttl_seconds if put.ttl_seconds > 0 else None
        job_id, record = put.job_id, put.record_json
        await write_with_retry(
            lambda: self._backend.put(job_id, record, ttl), self._policy, f"put {job_id}"
        )

    async def _delete(self, job_id: str) -> None:
        await write_with_retry(
            lambda: self._backend.delete(job_id), self._policy, f"delete {job_id}"
        )

    async def _write_batch(self, batch: pb.WriteBatch) -> None:
        writes = [_write_of(request) for request in batch.writes]
        backend = self._batch_writer
        if backend is not None:
            what = f"batch of {len(writes)} writes"
            await write_with_retry(lambda: backend.write_many(writes), self._policy, what)
            return
        for job_id, record, ttl in writes:  # puts and deletes are idempotent: a retry is safe
            if record is None:
                await self._delete(job_id)
            else:
                await self._put(pb.PutJob(job_id=job_id, record_json=record, ttl_seconds=ttl or 0))

    async def _list(self, seq: int, writer: asyncio.StreamWriter) -> None:
        # Reads get the same budget as a whole retried write: loading 10,000 jobs
        # at daemon start must not be cut short by a per-write timeout.
        budget = self._policy.timeout_s * (self._policy.retries + 1)
        try:
            async with asyncio.timeout(budget):
                records = await self._backend.list_all()
        except TimeoutError as exc:
            raise StateBackendError(f"listing jobs timed out after {budget:g}s") from exc
        for index, (job_id, record) in enumerate(records):
            message = pb.JobRecord(job_id=job_id, record_json=record)
            writer.write(encode_frame(pb.StateResponse(record=message)))
            if index % 256 == 255:
                await writer.drain()
        writer.write(encode_frame(pb.StateResponse(end=pb.ListEnd(seq=seq, count=len(records)))))
        await writer.drain()
        log.info("state: listed %d job records", len(records))


def _write_of(request: pb.StateRequest) -> Write:
    op = request.WhichOneof("op")
    if op == "put":
        put = request.put
        return put.job_id, put.record_json, put.ttl_seconds if put.ttl_seconds > 0 else None
    if op == "delete":
        return request.delete.job_id, None, None
    raise StateBackendError(f"a write batch holds only puts and deletes, not {op!r}")
