"""A job's output for readers, wherever it lives, and its copy to persist.

While a job's local log file exists (DIR/jobs/<id>/output.log, written by the
launcher) readers follow it: history and live output come from one file, so
there is no gap or duplicate between them. Each job's records are also sent to
the persist helper as they are written; once a finished job's whole log is
acknowledged there, the local file is removed and readers are served from
persist instead, after a daemon restart too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol

from joblet.errors import JobletError, NotFound
from joblet.logs.filters import LogFilter, last_lines, select
from joblet.logs.follow import LogHub
from joblet.logs.format import Framed, LogRecord
from joblet.logs.reader import CHUNK_BYTES, ChunkHead, coalesce
from joblet.logs.seal import seal
from joblet.logs.stamps import LineStamper

log = logging.getLogger(__name__)

PERSISTED_MARK = "output.persisted"
FLUSH_TIMEOUT_S = 30.0


class LogSink(Protocol):
    """The persist client's sending side."""

    dropped_bytes: int

    def send_logs(self, job_id: str, records: Sequence[Framed]) -> None:
        """Queue the records; borrowed output must be copied before returning."""

    def has_room(self) -> bool: ...

    async def wait_for_room(self) -> None: ...

    def job_finished(self, job_id: str) -> None: ...

    def delete(self, job_id: str) -> None: ...

    def delete_logs(self, job_id: str) -> None: ...

    async def stored(self, timeout: float) -> bool:
        """Whether everything queued so far was acknowledged within `timeout`."""


class LogHistory(Protocol):
    """The persist query client."""

    def query_logs(
        self, job_id: str, *, since_ns: int = 0, stream: Any = None, tail: int = 0
    ) -> AsyncIterator[LogRecord]: ...


class JobLogs:
    def __init__(
        self,
        hub: LogHub,
        log_path: Callable[[str], Path],
        sink: LogSink | None = None,
        history: LogHistory | None = None,
    ) -> None:
        self.hub = hub
        self._log_path = log_path
        self._sink = sink
        self._history = history
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Copies asked for by a restart, started by `start_held` once the
        # daemon serves (dict: in the order asked).
        self._held: dict[str, None] = {}
        # Awaited before a log's end goes to persist: the job's final metrics
        # sample goes first, so the end seals a complete history.
        self.before_finish: Callable[[str], Awaitable[None]] | None = None

    # ---- reading -------------------------------------------------------

    def read(
        self, job_id: str, log_filter: LogFilter, head: ChunkHead | None = None
    ) -> AsyncIterator[bytes]:
        """The job's output in chunks (see `coalesce` for `head`)."""
        if self.hub.is_tracked(job_id) and self._log_path(job_id).exists():
            return self._read_local(job_id, log_filter, head)
        return self.read_history(job_id, log_filter, head)

    async def _read_local(
        self, job_id: str, log_filter: LogFilter, head: ChunkHead | None
    ) -> AsyncIterator[bytes]:
        # With a tail, the history's last lines are kept (cut as they grow)
        # until the reader catches up (the first empty batch), then sent.
        tail = log_filter.tail_lines
        history: list[LogRecord] | None = [] if tail > 0 else None
        stamper = LineStamper() if log_filter.timestamps else None
        async for batch in self.hub.follow_records(job_id, live=log_filter.follow):
            views = select(batch, log_filter)
            records: Sequence[Framed] = views
            if history is not None:
                if batch:
                    history = last_lines([*history, *(view.owned() for view in views)], tail)
                    continue
                records, history = history, None
            if stamper is not None:
                records = stamper.stamp(records)
            for chunk in coalesce(records, head=head):
                yield chunk

    async def read_history(
        self,
        job_id: str,
        log_filter: LogFilter,
        head: ChunkHead | None,
        *,
        missing_ok: bool = True,
    ) -> AsyncIterator[bytes]:
        """The job's output from persist; `missing_ok`: nothing (not NotFound)
        for a job without history there."""
        if self._history is None:
            if not missing_ok:
                raise NotFound(f"job {job_id} not found (no job has that id or name)")
            return
        records = self._history.query_logs(
            job_id,
            since_ns=log_filter.since_ns,
            stream=log_filter.stream,
            tail=log_filter.tail_lines,
        )
        pending: list[LogRecord] = []
        size = 0
        stamp = LineStamper().stamp if log_filter.timestamps else list
        try:
            async for record in records:
                pending.append(record)
                size += len(record.data)
                if size >= CHUNK_BYTES:
                    for chunk in coalesce(stamp(pending), head=head):
                        yield chunk
                    pending, size = [], 0
        except NotFound:
            if not missing_ok:
                raise NotFound(f"job {job_id} not found (no job has that id or name)") from None
            return  # a job that never printed has no history
        for chunk in coalesce(stamp(pending), head=head):
            yield chunk

    async def seal(self, job_id: str, note: bytes) -> None:
        """End the job's local log with `note` (its writer died; see seal)."""
        await asyncio.to_thread(seal, str(self._log_path(job_id)), note)

    # ---- copying to persist --------------------------------------------

    def start_copy(self, job_id: str, *, new_log: bool = False) -> None:
        """Copy the job's log to persist from its start (idempotent: the copy
        first drops whatever an interrupted earlier copy left there).
        `new_log`: the caller has just created the log file, so no copy of it
        can have begun (a copy follows the file): nothing to drop, and
        persist gets one request less per job."""
        log_dir = self._log_path(job_id).parent
        if self._sink is None or job_id in self._tasks:
            return
        if not new_log and (log_dir / PERSISTED_MARK).exists():
            return
        self._own(job_id, self._copy(job_id, self._sink, new_log))

    def hold_copy(self, job_id: str) -> None:
        """`start_copy`, but only at `start_held`: a restart re-attaches
        thousands of jobs, and their copies starting together held up the
        first calls the restarted daemon answered. The job counts as copying
        meanwhile (it is not collected before its log reached persist)."""
        if self._sink is not None and job_id not in self._tasks:
            self._held[job_id] = None

    async def start_held(self, batch: int = 100) -> None:
        """Start the held copies, `batch` per turn of the loop: calls are
        answered in between."""
        while self._held:
            for job_id in list(itertools.islice(self._held, batch)):
                del self._held[job_id]
                self.start_copy(job_id)
            await asyncio.sleep(0)

    def _own(self, job_id: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks[job_id] = task
        task.add_done_callback(lambda done: self._copied(job_id, done))

    def _copied(self, job_id: str, task: asyncio.Future[None]) -> None:
        # Only its own entry: a job run again under its id (a placed job the
        # cluster queued again) has a newer copy there, which must stay known
        # (a delete cancels it; a collect waits for it).
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]

    async def _copy(self, job_id: str, sink: LogSink, new_log: bool = False) -> None:
        dropped = sink.dropped_bytes
        if not new_log:
            # Start over on the log alone: the job's metric history (samples
            # sent before a daemon restart, or a final one sent before this
            # copy) stays.
            sink.delete_logs(job_id)
        async for batch in self.hub.follow_records(job_id):
            # Persist is behind: wait, never overflow. Woken by its acks, not
            # by polling: hundreds of jobs may be waiting while it is away.
            await sink.wait_for_room()
            if batch:
                sink.send_logs(job_id, batch)
                await asyncio.sleep(0)  # let other readers in while far behind the writer
        if self.before_finish is not None:
            await self.before_finish(job_id)
        sink.job_finished(job_id)
        if not await sink.stored(FLUSH_TIMEOUT_S):
            log.warning("persist did not confirm the log of job %s; keeping it locally", job_id)
        elif sink.dropped_bytes != dropped:
            log.warning("part of job %s's log missed persist; keeping it locally", job_id)
        else:
            self._drop_local(job_id)

    def _drop_local(self, job_id: str) -> None:
        path = self._log_path(job_id)
        try:
            (path.parent / PERSISTED_MARK).touch()
        except FileNotFoundError:  # the job was deleted meanwhile
            return
        self.hub.forget(job_id)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def copying(self, job_id: str) -> bool:
        """Whether the job's log is still on its way to persist."""
        return job_id in self._tasks or job_id in self._held

    def drop_local(self, job_id: str) -> None:
        """Stop following a collected job; its history in persist stays."""
        self._held.pop(job_id, None)
        task = self._tasks.pop(job_id, None)
        if task is not None:
            task.cancel()
        self.hub.forget(job_id)

    def delete(self, job_id: str) -> None:
        self._held.pop(job_id, None)
        task = self._tasks.pop(job_id, None)
        if task is not None:
            task.cancel()
        self.hub.forget(job_id)
        if self._sink is not None:
            self._sink.delete(job_id)

    async def close(self) -> None:
        self._held.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, JobletError):
                await task
