"""CloudWatch Logs as a live copy of every job's log: one stream per job
(named by its id) in one log group, events sent in order in batches within
the service's limits, retried with backoff while it fails.

A copy only: queries stay on the local disk and the archive. While
CloudWatch is away events wait in memory up to `maxBuffer`; past it the
oldest are dropped, counted and logged, never the job's history itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from joblet.errors import ConfigError
from joblet.persist.archive.backoff import Backoff
from joblet.persist.archive.cloudwatch_batches import Event, batches, events_of
from joblet.persist.archive.cloudwatch_config import CloudWatchConfig
from joblet.persist.store.records import MARKER, PackedBatch, decode

log = logging.getLogger(__name__)

SEND_AT_BYTES = 512 * 1024  # send early once this much waits
MAX_JOBS_KNOWN = 10_000


class CloudWatchError(Exception):
    """CloudWatch Logs failed or could not be reached (retry later)."""


class CloudWatchSink:
    def __init__(self, config: CloudWatchConfig, client: Any = None) -> None:
        self.config = config
        self._client = client if client is not None else _client(config)
        self._pending: dict[str, deque[Event]] = {}
        self._last_ms: dict[str, int] = {}  # per job: events must not go back in time
        self._streams: set[str] = set()
        self._bytes = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._backoff = Backoff(30.0)
        self.sent_events = 0
        self.dropped_events = 0
        self.rejected_events = 0  # batches with events the service refused
        self.failures = 0

    # ---- the writer's side (persist's writer thread) --------------------

    def offer(self, job_id: str, written: Sequence[PackedBatch]) -> None:
        """Queue the records of batches just stored for a job."""
        with self._lock:
            if len(self._last_ms) > MAX_JOBS_KNOWN:  # forget finished jobs now and then
                self._last_ms = {j: t for j, t in self._last_ms.items() if self._pending.get(j)}
                self._pending = {j: q for j, q in self._pending.items() if q}
                self._streams &= set(self._pending)
            queue = self._pending.setdefault(job_id, deque())
            last = self._last_ms.get(job_id, 0)
            for batch in written:
                records, _ = decode(batch.data)
                for record in records:
                    if record.kind == MARKER:
                        continue
                    for event in events_of(record.timestamp_ns, record.data):
                        last = max(last, event.timestamp_ms)
                        queue.append(Event(last, event.message))
                        self._bytes += event.size
            self._last_ms[job_id] = last
            self._drop_over_limit()
            if self._bytes >= SEND_AT_BYTES:
                self._wake.set()

    def _drop_over_limit(self) -> None:
        dropped = 0
        while self._bytes > self.config.max_buffer_bytes:
            job_id = next((job for job, queue in self._pending.items() if queue), None)
            if job_id is None:
                break  # the rest is being sent
            self._bytes -= self._pending[job_id].popleft().size
            dropped += 1
        if dropped:
            if not self.dropped_events:
                log.error(
                    "CloudWatch Logs is behind by more than cloudwatch.maxBuffer; dropping "
                    "the oldest events of its copy (the history itself is kept)"
                )
            self.dropped_events += dropped

    # ---- sending (a thread of its own) ----------------------------------

    async def run(self) -> None:
        if self.config.create_group:
            try:
                await asyncio.to_thread(self._create_group)
            except CloudWatchError as exc:
                log.warning("cannot create log group %s: %s", self.config.log_group, exc)
        while True:
            await asyncio.to_thread(self._wake.wait, self.config.flush_interval_s)
            self._wake.clear()
            try:
                await asyncio.to_thread(self.send_pending)
                self._backoff.reset()
            except CloudWatchError as exc:
                self.failures += 1
                wait = self._backoff.next_wait()
                log.warning("CloudWatch Logs failed (next try in %.1fs): %s", wait, exc)
                await asyncio.sleep(wait)

    def send_pending(self) -> int:
        """Send what waits, job by job, oldest first; what a failure leaves
        unsent stays first in line. Returns the events sent."""
        with self._lock:
            taken = {job: list(queue) for job, queue in self._pending.items() if queue}
            for job in taken:
                self._pending[job].clear()
        sent = 0
        failure: CloudWatchError | None = None
        for job_id, events in taken.items():
            done = 0
            if failure is None:
                try:
                    self._ensure_stream(job_id)
                    for batch in batches(events):
                        self._put(job_id, batch)
                        done += len(batch)
                except CloudWatchError as exc:
                    failure = exc
            self._requeue(job_id, events[done:])
            sent += done
        self.sent_events += sent
        if failure is not None:
            raise failure
        return sent

    def _requeue(self, job_id: str, unsent: list[Event]) -> None:
        """Put unsent events back before any that came meanwhile."""
        if unsent:
            with self._lock:
                self._pending.setdefault(job_id, deque()).extendleft(reversed(unsent))

    def _ensure_stream(self, job_id: str) -> None:
        if job_id in self._streams:
            return
        try:
            self._client.create_log_stream(logGroupName=self.config.log_group, logStreamName=job_id)
        except Exception as exc:
            if _code(exc) != "ResourceAlreadyExistsException":
                raise CloudWatchError(f"creating stream {job_id}: {exc}") from exc
        self._streams.add(job_id)

    def _put(self, job_id: str, batch: list[Event]) -> None:
        try:
            reply = self._client.put_log_events(
                logGroupName=self.config.log_group,
                logStreamName=job_id,
                logEvents=[event.to_api() for event in batch],
            )
        except Exception as exc:
            raise CloudWatchError(f"sending {len(batch)} event(s) of {job_id}: {exc}") from exc
        rejected = reply.get("rejectedLogEventsInfo") if isinstance(reply, dict) else None
        if rejected:  # too old or too new for the service: nothing a retry changes
            self.rejected_events += 1
            log.warning("CloudWatch Logs refused events of job %s: %s", job_id, rejected)
        with self._lock:
            self._bytes -= sum(event.size for event in batch)

    def _create_group(self) -> None:
        try:
            self._client.create_log_group(logGroupName=self.config.log_group)
        except Exception as exc:
            if _code(exc) != "ResourceAlreadyExistsException":
                raise CloudWatchError(str(exc)) from exc

    def flush(self, timeout_s: float) -> bool:
        """Try to send everything before persist stops; False if some is left."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.send_pending()
            except CloudWatchError:
                time.sleep(0.2)
                continue
            with self._lock:
                if not any(self._pending.values()):
                    return True
        return False


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _client(config: CloudWatchConfig) -> Any:
    try:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigError("persist.cloudwatch needs boto3: pip install 'joblet[s3]'") from exc
    kwargs: dict[str, Any] = {"region_name": config.region}
    if config.endpoint_url:
        kwargs["endpoint_url"] = config.endpoint_url
    if config.access_key_id:
        kwargs["aws_access_key_id"] = config.access_key_id
        kwargs["aws_secret_access_key"] = config.secret_access_key
    retries = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5,
                     read_timeout=30)  # fmt: skip
    return boto3.client("logs", config=retries, **kwargs)
