"""Applying IPC requests to the stores: the synchronous core of the IPC server.

The server hands over every frame that arrived while the previous group was
being written. The log (and metric) batches of one job in a group are
written together: one compressed block, one marker, one write call, so the
cost per request is small and the cost per byte is mostly compression.
Control requests (a hello, job finished, delete) are barriers: what came
before them is written first.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from joblet.api import persist_pb2 as pb
from joblet.errors import InvalidArgument
from joblet.persist.store import HistoryStore, Record, check_job_id
from joblet.persist.store.records import (
    MAX_KIND,
    CorruptRecord,
    PackedBatch,
    pack_records,
    summarize_packed,
)

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


@dataclass
class Connection:
    """One sender's connection, as the writer thread sees it (only that thread
    touches it, one group after another)."""

    session: str = ""  # from the Hello
    stopped: bool = False  # a write failed or a frame was bad: apply nothing more


@dataclass
class GroupOutcome:
    """What became of a group of frames, for the acknowledgements.

    Every request up to `acked_seq` is done (stored, a duplicate, or in
    `rejected` with the reason). With `failure` = (seq, why), nothing from
    that seq on was applied (later batches of other jobs may have been, and
    are skipped as duplicates when the sender replays). `bad_frame`: a frame
    that is not a Request; the ones before it were applied. A group that
    came after either of those is not applied at all (all fields empty).
    """

    acked_seq: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    failure: tuple[int, str] | None = None
    bad_frame: str = ""


# (store, job id) -> that job's batches in this group, in arrival order
_Pending = dict[tuple[HistoryStore, str], list[PackedBatch]]


class Ingest:
    """Applies groups of requests; one writer thread calls it."""

    def __init__(
        self,
        logs: HistoryStore,
        metrics: HistoryStore,
        log_tap: Callable[[str, Sequence[PackedBatch]], None] | None = None,
    ) -> None:
        self.logs = logs
        self.metrics = metrics
        self.log_tap = log_tap  # sees each log batch once it is stored (a live copy)
        # told of each deletion (job id, whole history or its log only)
        self.on_delete: Callable[[str, bool], None] | None = None
        self.stats = IngestStats()
        self._last_error_log = 0.0
        self._errors_since_log = 0

    def apply_frames(self, conn: Connection, bodies: Sequence[bytes]) -> GroupOutcome:
        """Apply frame bodies (serialized `Request`s) in order."""
        outcome = GroupOutcome()
        if conn.stopped:
            return outcome
        pending: _Pending = {}
        done: list[int] = []  # seqs handled, in order
        for body in bodies:
            try:
                request = pb.Request.FromString(body)
            except DecodeError as exc:
                outcome.bad_frame = f"not a Request ({exc})"
                break
            kind = request.WhichOneof("body")
            if kind == "metric_tick":
                for part in request.metric_tick.batches:
                    self._add_metrics(request.seq, part, pending, outcome)
                done.append(request.seq)
                continue
            if kind in ("logs", "metrics"):
                self._add_batch(request, pending, outcome)
                done.append(request.seq)
                continue
            # A barrier: write what came before it first.
            if not self._flush(conn.session, pending, outcome):
                break
            if kind == "hello":
                conn.session = request.hello.session
                continue
            if not self._control(request, outcome):
                break
            done.append(request.seq)
        if outcome.failure is None:
            self._flush(conn.session, pending, outcome)
        conn.stopped = outcome.failure is not None or bool(outcome.bad_frame)
        limit = outcome.failure[0] if outcome.failure else None
        outcome.acked_seq = max((s for s in done if limit is None or s < limit), default=0)
        outcome.rejected = [(s, why) for s, why in outcome.rejected if limit is None or s < limit]
        return outcome

    def _add_metrics(
        self, seq: int, part: pb.MetricBatch, pending: _Pending, outcome: GroupOutcome
    ) -> None:
        """One job's part of a tick: a bad one (its id) is rejected alone."""
        try:
            job_id, batch = _metric_batch(seq, part)
        except InvalidArgument as exc:
            self._reject(seq, str(exc), outcome)
            return
        pending.setdefault((self.metrics, job_id), []).append(batch)

    def _add_batch(self, request: pb.Request, pending: _Pending, outcome: GroupOutcome) -> None:
        try:
            store, job_id, batch = self._packed(request)
        except (InvalidArgument, CorruptRecord) as exc:
            self._reject(request.seq, str(exc), outcome)
            return
        pending.setdefault((store, job_id), []).append(batch)

    def _packed(self, request: pb.Request) -> tuple[HistoryStore, str, PackedBatch]:
        if request.WhichOneof("body") == "metrics":
            job_id, packed = _metric_batch(request.seq, request.metrics)
            return self.metrics, job_id, packed
        batch = request.logs
        job_id = check_job_id(batch.job_id)
        data: bytes = batch.packed
        if batch.entries:  # the generic form: pack it here
            entries = [Record(e.stream, e.timestamp_ns, e.data) for e in batch.entries]
            if any(not 1 <= r.kind <= MAX_KIND or r.timestamp_ns < 0 for r in entries):
                raise InvalidArgument(
                    f"log batch for {job_id} has an unknown stream or a negative timestamp"
                )
            data = pack_records(entries) + data
        try:
            summary = summarize_packed(data)
        except CorruptRecord as exc:
            raise CorruptRecord(f"log batch for {job_id}: {exc}") from exc
        return self.logs, job_id, PackedBatch(request.seq, data, summary)

    def _flush(self, session: str, pending: _Pending, outcome: GroupOutcome) -> bool:
        """Write the pending batches, job by job; False (and `failure` set) if
        a write failed."""
        runs = list(pending.items())
        pending.clear()
        for index, ((store, job_id), batches) in enumerate(runs):
            try:
                written = store.append_packed(job_id, session, batches)
            except OSError as exc:
                # Neither this run nor the ones not written yet are kept.
                first = min(later[0].seq for _key, later in runs[index:])
                outcome.failure = (first, self._storage_error(exc))
                return False
            self.stats.batches_written += written
            self.stats.duplicates_skipped += len(batches) - written
            if written and store is self.logs and self.log_tap is not None:
                # A replay's batches come first and are skipped: the fresh ones end the run.
                self.log_tap(job_id, batches[len(batches) - written :])
        return True

    def _control(self, request: pb.Request, outcome: GroupOutcome) -> bool:
        kind = request.WhichOneof("body")
        try:
            if kind == "job_finished":
                if not request.job_finished.metrics_only:
                    self.logs.seal(request.job_finished.job_id)
                self.metrics.seal(request.job_finished.job_id)
            elif kind == "delete_job":
                self.logs.delete(request.delete_job.job_id)
                if not request.delete_job.logs_only:
                    self.metrics.delete(request.delete_job.job_id)
                if self.on_delete is not None:
                    self.on_delete(request.delete_job.job_id, not request.delete_job.logs_only)
            else:
                raise InvalidArgument(f"request without a known body ({kind})")
        except InvalidArgument as exc:
            self._reject(request.seq, str(exc), outcome)
        except OSError as exc:
            outcome.failure = (request.seq, self._storage_error(exc))
            return False
        return True

    def _reject(self, seq: int, why: str, outcome: GroupOutcome) -> None:
        self.stats.rejected += 1
        log.error("dropping an invalid request (seq %d): %s", seq, why)
        outcome.rejected.append((seq, why))

    def _storage_error(self, exc: OSError) -> str:
        self.stats.write_errors += 1
        self._log_write_error(exc)
        return _describe(exc)

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


def _metric_batch(seq: int, metrics: pb.MetricBatch) -> tuple[str, PackedBatch]:
    samples = [Record(1, s.timestamp_ns, s.payload) for s in metrics.samples]
    job_id = check_job_id(metrics.job_id)
    if any(r.timestamp_ns < 0 for r in samples):
        raise InvalidArgument(f"metric batch for {job_id} has a negative timestamp")
    return job_id, PackedBatch.of_records(seq, samples)


def _describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "error")
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"disk full: no space left for persist's history{where} [ENOSPC]"
    return f"{exc.strerror or exc}{where} [{name}]"
