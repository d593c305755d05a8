"""The persist backend: where histories live once their jobs have finished.

`local` keeps them on this node's disk (retention by age and size). `s3`
uses that disk as a write-ahead buffer: finished segments are uploaded, the
manifest last; local copies go keepLocal after the upload is confirmed;
queries that find nothing local are answered from the bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from joblet.persist.archive import keys
from joblet.persist.archive.archiver import Archiver, ArchiveStats
from joblet.persist.archive.backoff import Backoff
from joblet.persist.archive.config import S3Config
from joblet.persist.archive.objects import ArchiveError, ObjectStore
from joblet.persist.archive.remote import RemoteHistory
from joblet.persist.store import HistoryStore, Snapshot
from joblet.persist.store.segment import ByteReader, SegmentInfo

Opener = Callable[[SegmentInfo], AbstractContextManager[ByteReader]]

log = logging.getLogger(__name__)


class HistoryBackend(Protocol):
    name: str
    stats: ArchiveStats

    async def run(self) -> None:
        """Background work until cancelled."""

    def remote_snapshot(
        self, kind: str, job_id: str, *, from_start: bool = False
    ) -> Snapshot | None:
        """A job's history not on this disk (blocking), or None; `from_start`:
        the query reads from the first segment on."""

    def fallback(self, kind: str, job_id: str) -> Opener | None:
        """Where a local segment removed during a query is read from."""

    def archived(self) -> set[str]:
        """Jobs whose history is safe elsewhere: local retention may delete
        them; it must keep all others while the backend needs them."""

    def drop(self, job_id: str) -> bool:
        """Delete the local copy of an archived job."""

    def forget(self, job_id: str, whole: bool) -> None:
        """The job's history was deleted (whole) or its log is written again."""

    def sweep(self, now: float) -> list[str]:
        """Apply the backend's own retention (blocking)."""


class LocalBackend:
    name = "local"

    def __init__(self) -> None:
        self.stats = ArchiveStats()

    async def run(self) -> None:
        await asyncio.Event().wait()

    def remote_snapshot(
        self, kind: str, job_id: str, *, from_start: bool = False
    ) -> Snapshot | None:
        return None

    def fallback(self, kind: str, job_id: str) -> Opener | None:
        return None

    def archived(self) -> set[str]:
        return set()

    def drop(self, job_id: str) -> bool:
        return False

    def forget(self, job_id: str, whole: bool) -> None:
        pass

    def sweep(self, now: float) -> list[str]:
        return []


class S3Backend:
    name = "s3"

    def __init__(
        self,
        objects: ObjectStore,
        config: S3Config,
        node_id: str,
        stores: Mapping[str, HistoryStore],
        state_dir: Path,
    ) -> None:
        self.config = config
        self.archiver = Archiver(objects, config, node_id, stores, state_dir)
        self.remote = RemoteHistory(objects, config, node_id)
        self.stats = self.archiver.stats
        self._backoff = Backoff(config.max_backoff_s)

    async def run(self) -> None:
        try:
            aborted = await asyncio.to_thread(
                self.archiver.objects.abort_incomplete, self.archiver_prefix()
            )
            if aborted:
                log.info("aborted %d multipart upload(s) a previous persist left", aborted)
        except ArchiveError as exc:
            log.warning("cannot look for unfinished uploads: %s", exc)
        while True:
            wait = self.config.upload_interval_s
            try:
                await asyncio.to_thread(self.archiver.upload_pass)
                await asyncio.to_thread(self.archiver.drop_local, time.time())
                self._backoff.reset()
            except (ArchiveError, OSError) as exc:
                wait = self._backoff.next_wait()
                log.warning(
                    "archive upload failed (try %d, next in %.1fs; local copies kept): %s",
                    self._backoff.failures, wait, exc,
                )  # fmt: skip
            await asyncio.sleep(wait)

    def archiver_prefix(self) -> str:
        return keys.node_prefix(self.config.prefix, self.archiver.node_id)

    def remote_snapshot(
        self, kind: str, job_id: str, *, from_start: bool = False
    ) -> Snapshot | None:
        return self.remote.snapshot(kind, job_id, from_start=from_start)

    def fallback(self, kind: str, job_id: str) -> Opener | None:
        @contextlib.contextmanager
        def opener(info: SegmentInfo) -> Iterator[ByteReader]:
            remote = self.remote.snapshot(kind, job_id)
            known = [s for s in (remote.segments if remote else []) if s.name == info.name]
            if remote is None or remote.opener is None or not known:
                raise FileNotFoundError(f"{job_id}/{kind}/{info.name} is not archived")
            with remote.opener(known[0]) as handle:
                yield handle

        return opener

    def archived(self) -> set[str]:
        return set(self.archiver.archived())

    def drop(self, job_id: str) -> bool:
        return self.archiver.drop_job(job_id)

    def forget(self, job_id: str, whole: bool) -> None:
        self.archiver.forget(job_id, whole)

    def sweep(self, now: float) -> list[str]:
        return self.archiver.remote_sweep(now)


def open_backend(
    config: S3Config | None, node_id: str, stores: Mapping[str, HistoryStore], state_dir: Path
) -> HistoryBackend:
    """The configured backend; boto3 is imported only for `s3`."""
    if config is None:
        return LocalBackend()
    from joblet.persist.archive.objects import open_s3

    return S3Backend(open_s3(config), config, node_id, stores, state_dir)
