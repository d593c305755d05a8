"""Applying IPC requests to the stores: the synchronous core of the IPC server."""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass

from joblet.api import persist_pb2 as pb
from joblet.errors import InvalidArgument
from joblet.persist.store import HistoryStore, Marker, Record

log = logging.getLogger(__name__)

ERROR_LOG_INTERVAL_S = 30.0


class StorageError(Exception):
    """Writing failed (disk full, I/O error); the request was not kept."""


@dataclass
class IngestStats:
    batches_written: int = 0
    duplicates_skipped: int = 0
    write_errors: int = 0
    rejected: int = 0


class Ingest:
    """Applies one request at a time; callers serialize (one event loop)."""

    def __init__(self, logs: HistoryStore, metrics: HistoryStore) -> None:
        self.logs = logs
        self.metrics = metrics
        self.stats = IngestStats()
        self._last_error_log = 0.0
        self._errors_since_log = 0

    def apply(self, session: str, request: pb.Request) -> str:
        """Apply a request. Returns '' or why it was rejected as invalid;
        raises StorageError when it could not be stored."""
        try:
            self._dispatch(session, request)
        except InvalidArgument as exc:
            self.stats.rejected += 1
            log.error("dropping an invalid request (seq %d): %s", request.seq, exc)
            return str(exc)
        except OSError as exc:
            self.stats.write_errors += 1
            self._log_write_error(exc)
            raise StorageError(_describe(exc)) from exc
        return ""

    def _dispatch(self, session: str, request: pb.Request) -> None:
        marker = Marker(session, request.seq)
        body = request.WhichOneof("body")
        if body == "logs":
            batch = request.logs
            records = [Record(e.stream, e.timestamp_ns, e.data) for e in batch.entries]
            if any(not 1 <= r.kind <= 3 for r in records):
                raise InvalidArgument(f"log batch for {batch.job_id} has an unknown stream")
            self._count(self.logs.append(batch.job_id, records, marker))
        elif body == "metrics":
            mbatch = request.metrics
            samples = [Record(1, s.timestamp_ns, s.payload) for s in mbatch.samples]
            self._count(self.metrics.append(mbatch.job_id, samples, marker))
        elif body == "job_finished":
            self.logs.seal(request.job_finished.job_id)
            self.metrics.seal(request.job_finished.job_id)
        elif body == "delete_job":
            self.logs.delete(request.delete_job.job_id)
            self.metrics.delete(request.delete_job.job_id)
        else:
            raise InvalidArgument(f"request without a known body ({body})")

    def _count(self, written: bool) -> None:
        if written:
            self.stats.batches_written += 1
        else:
            self.stats.duplicates_skipped += 1

    def _log_write_error(self, exc: OSError) -> None:
        # A full disk fails every batch until space is freed: say so clearly,
        # but not thousands of times a second.
        now = time.monotonic()
        self._errors_since_log += 1
        if now - self._last_error_log < ERROR_LOG_INTERVAL_S:
            return
        log.error(
            "cannot store history: %s (%d failed writes since the last report); "
            "the daemon keeps the data buffered and retries",
            _describe(exc),
            self._errors_since_log,
        )
        self._last_error_log = now
        self._errors_since_log = 0


def _describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "error")
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"disk full: no space left for persist's history{where} [ENOSPC]"
    return f"{exc.strerror or exc}{where} [{name}]"
