"""Uploading finished segments and manifests; dropping local copies; S3 retention.

Blocking calls (boto3, file hashing): the backend runs them on a thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from joblet.persist.archive import keys
from joblet.persist.archive.config import S3Config
from joblet.persist.archive.manifest import ArchivedSegment, Manifest
from joblet.persist.archive.objects import ObjectStore
from joblet.persist.archive.state import ArchiveStateDir, JobArchiveState
from joblet.persist.store import HistoryStore
from joblet.persist.store.segment import SegmentInfo

log = logging.getLogger(__name__)

# Segments of one job uploaded at once, each streamed from its file (the
# parts of a multipart one too: boto3 reads them from the file as it sends).
UPLOAD_THREADS = 4
# How long a history opened again after its job ended must be quiet before
# the archive takes it as complete.
LATE_S = 2.0


@dataclass
class ArchiveStats:
    segments_uploaded: int = 0
    bytes_uploaded: int = 0
    jobs_archived: int = 0
    upload_failures: int = 0
    local_dropped: int = 0
    remote_deleted: int = 0


def signature(kinds: Mapping[str, list[SegmentInfo]]) -> list[str]:
    """What a manifest covers: every kind's segments with their sizes."""
    return sorted(
        f"{kind}/{info.name}:{info.stored_bytes}" for kind, infos in kinds.items() for info in infos
    )


class Archiver:
    def __init__(
        self,
        objects: ObjectStore,
        config: S3Config,
        node_id: str,
        stores: Mapping[str, HistoryStore],
        state_dir: Path,
    ) -> None:
        self.objects = objects
        self.config = config
        self.node_id = node_id
        self.stores = stores
        self.states = ArchiveStateDir(state_dir)
        self.stats = ArchiveStats()

    def job_ids(self) -> list[str]:
        return sorted({job for store in self.stores.values() for job in store.job_ids()})

    def upload_pass(self) -> int:
        """Upload what is finished and not uploaded yet, job by job; returns
        how many jobs got a manifest. Raises ArchiveError at the first failure
        (the caller waits and tries again; nothing local is touched)."""
        self.apply_deletions()
        archived = 0
        for job_id in self.job_ids():
            # Archived jobs too: a record that came after the job ended (a
            # last metric sample) gives it a new segment and a new manifest.
            try:
                if self._archive_job(job_id, self.states.load(job_id)):
                    archived += 1
            except OSError as exc:
                # This job's files (a segment removed or damaged meanwhile):
                # the others go on; it is tried again next pass.
                log.warning("cannot archive job %s now: %s", job_id, exc)
        return archived

    def _finished(self, job_id: str) -> tuple[bool, dict[str, list[SegmentInfo]]]:
        """Whether the job has ended (its history is complete), and every
        kind's finished segments. The end seals the histories; a record that
        comes later (a last metric sample) opens one again, with a segment
        not finished: once it has been quiet for LATE_S it is sealed here."""
        found = {kind: store.finished(job_id) for kind, store in self.stores.items()}
        present: dict[str, tuple[bool, list[SegmentInfo]] | None] = {
            kind: value for kind, value in found.items() if value is not None
        }
        ended = any(value[0] for value in present.values() if value is not None)
        for kind in list(present) if ended else []:
            idle = self.stores[kind].idle_s(job_id)
            if idle is None:
                continue  # not open: every segment is finished
            if idle < LATE_S:
                ended = False
            else:
                self.stores[kind].seal(job_id)  # finishes the open segment
                present[kind] = self.stores[kind].finished(job_id)
        kinds = {kind: value[1] for kind, value in present.items() if value is not None}
        return ended, kinds

    def _archive_job(self, job_id: str, state: JobArchiveState) -> bool:
        sealed, kinds = self._finished(job_id)
        started = time.monotonic()
        uploaded = self._upload_segments(job_id, kinds, state)
        sig = signature(kinds)
        if not sealed or (state.archived_at and state.signature == sig):
            return False
        manifest = Manifest(job_id, self.node_id, time.time(), self._last_write(job_id))
        for kind, infos in kinds.items():
            manifest.kinds[kind] = [
                ArchivedSegment(info, state.uploaded[self._key(job_id, kind, info)][1])
                for info in infos
            ]
        # Last: with the manifest, the job is whole and served.
        self.objects.put_bytes(keys.manifest_key(self.config.prefix, self.node_id, job_id),
                               manifest.to_bytes())  # fmt: skip
        state.archived_at, state.signature = manifest.archived_at, sig
        self.states.save(job_id, state)
        self.stats.jobs_archived += 1
        log.info(
            "archived the history of job %s (%d segment(s); %d bytes uploaded in %.3f s)",
            job_id, len(sig), uploaded, time.monotonic() - started,
        )  # fmt: skip
        return True

    def _key(self, job_id: str, kind: str, info: SegmentInfo) -> str:
        return keys.segment_key(self.config.prefix, self.node_id, job_id, kind, info.name)

    def _upload_segments(
        self, job_id: str, kinds: Mapping[str, list[SegmentInfo]], state: JobArchiveState
    ) -> int:
        """Upload the segments not uploaded yet, a few at a time; each is
        recorded once confirmed. Returns the bytes uploaded; raises the
        first failure after the others have finished."""
        todo = [
            (self._key(job_id, kind, info), self.stores[kind].root / job_id / info.name, info)
            for kind, infos in kinds.items()
            for info in infos
            if state.uploaded.get(self._key(job_id, kind, info), (-1, ""))[0] != info.stored_bytes
        ]
        if not todo:
            return 0
        failure: BaseException | None = None
        uploaded = 0
        with ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="archive-upload") as pool:
            futures = {
                pool.submit(self.objects.put_file, key, path): (key, info)
                for key, path, info in todo
            }
            for future in as_completed(futures):
                key, info = futures[future]
                try:
                    sha = future.result()
                except Exception as exc:
                    self.stats.upload_failures += 1
                    failure = failure or exc
                    continue
                state.uploaded[key] = (info.stored_bytes, sha)
                uploaded += info.stored_bytes
                self.stats.segments_uploaded += 1
                self.stats.bytes_uploaded += info.stored_bytes
        self.states.save(job_id, state)
        if failure is not None:
            raise failure
        return uploaded

    def _last_write(self, job_id: str) -> float:
        newest = 0.0
        for store in self.stores.values():
            directory = store.root / job_id
            for path in directory.glob("*") if directory.is_dir() else ():
                newest = max(newest, path.stat().st_mtime)
        return newest or time.time()

    def archived(self) -> dict[str, float]:
        return self.states.archived()

    def drop_local(self, now: float) -> list[str]:
        """Delete the local copies of jobs archived keepLocal ago or more,
        when nothing was written to them since their manifest."""
        dropped = []
        for job_id, archived_at in sorted(self.archived().items(), key=lambda kv: kv[1]):
            if now - archived_at < self.config.keep_local_s:
                continue
            if self.drop_job(job_id):
                dropped.append(job_id)
        return dropped

    def drop_job(self, job_id: str) -> bool:
        """Delete one archived job's local copy; False when it changed since
        its manifest (it is archived again first)."""
        state = self.states.load(job_id)
        if not state.archived_at or self.states.owes(job_id):
            return False  # no manifest, or one about to be deleted
        sealed, kinds = self._finished(job_id)
        if kinds and (not sealed or signature(kinds) != state.signature):
            return False
        if any(store.is_open(job_id) for store in self.stores.values()):
            return False
        for store in self.stores.values():
            store.delete(job_id)
        self.states.forget(job_id)
        self.stats.local_dropped += 1
        return True

    def forget(self, job_id: str, whole: bool) -> None:
        """The job's history was deleted here (whole), or its log is being
        written again from the start (a copy restarted; persist is told so
        before every job's first output): its archived copy must go (whole),
        or stop being served until it is archived again (its manifest; owed
        only when something of it was uploaded, so new jobs cost nothing)."""
        uploaded = self.states.has(job_id)
        self.states.forget(job_id)
        if whole or uploaded:
            self.states.owe_deletion(job_id, whole)

    def apply_deletions(self) -> None:
        """Delete what `forget` owes the store, the manifest first; what was
        known of the job's uploads is forgotten with it (a pass that raced
        the deletion archives the job again)."""
        for job_id, whole in self.states.owed_deletions():
            self.objects.delete([keys.manifest_key(self.config.prefix, self.node_id, job_id)])
            if whole:
                prefix = keys.job_prefix(self.config.prefix, self.node_id, job_id)
                self.objects.delete(list(self.objects.list_keys(prefix)))
            self.states.forget(job_id)
            self.states.paid(job_id)

    def remote_sweep(self, now: float) -> list[str]:
        """Delete this node's archived jobs older than maxAge: the manifest
        first (the job stops being served), then its segments."""
        if not self.config.max_age_s:
            return []
        mine = keys.node_prefix(self.config.prefix, self.node_id)
        doomed = []
        # A manifest's own date is when it was (last) written: no need to read it.
        for key, written in list(self.objects.list_dated(mine)):
            job_id = keys.job_of_manifest(key)
            if job_id is None or key != keys.manifest_key(self.config.prefix, self.node_id, job_id):
                continue
            if now - written > self.config.max_age_s:
                self.objects.delete([key])
                prefix = keys.job_prefix(self.config.prefix, self.node_id, job_id)
                self.objects.delete(list(self.objects.list_keys(prefix)))
                doomed.append(job_id)
        self.stats.remote_deleted += len(doomed)
        if doomed:
            log.info("retention deleted %d archived job(s): %s", len(doomed), doomed)
        return doomed
