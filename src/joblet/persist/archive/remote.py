"""Serving archived histories: a job's manifest, then its segments streamed
from the store in ranged GETs. Read-only; any node on the same bucket and
prefix answers for any node's jobs, by job id."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from joblet.persist.archive import keys
from joblet.persist.archive.config import S3Config
from joblet.persist.archive.manifest import Manifest
from joblet.persist.archive.objects import ObjectStore, Reader, discard
from joblet.persist.store import Snapshot
from joblet.persist.store.history import segment_name
from joblet.persist.store.segment import SegmentInfo


class RemoteHistory:
    def __init__(self, objects: ObjectStore, config: S3Config, node_id: str) -> None:
        self.objects = objects
        self.config = config
        self.node_id = node_id

    def manifest(self, job_id: str) -> tuple[str, Manifest] | None:
        """The job's manifest and the node whose prefix holds it: this node's
        first, then every other node's under the prefix. Read anew for each
        query (one small GET): retention deletes the manifest first, and from
        then on the job must not be served."""
        for node in self._nodes():
            data = self.objects.get_bytes(keys.manifest_key(self.config.prefix, node, job_id))
            if data is None:
                continue
            return node, Manifest.from_bytes(data)
        return None

    def _nodes(self) -> Iterator[str]:
        yield self.node_id
        top = keys.node_prefix(self.config.prefix, "").rstrip("/")
        for entry in self.objects.list_dirs(f"{top}/" if top else ""):
            node = entry.rstrip("/").rsplit("/", 1)[-1]
            if node != self.node_id:
                yield node

    def snapshot(self, kind: str, job_id: str, *, from_start: bool = False) -> Snapshot | None:
        """`from_start`: the query reads the first segment first; its first
        range is asked for (on this node's prefix) while the manifest is."""
        first_name = segment_name(1)
        guess = keys.segment_key(self.config.prefix, self.node_id, job_id, kind, first_name)
        first = self.objects.prefetch(guess) if from_start else None
        try:
            found = self.manifest(job_id)
        except BaseException:
            if first is not None:
                discard(first)
            raise
        base = keys.job_prefix(self.config.prefix, found[0], job_id) + kind if found else ""
        if first is not None and (
            found is None
            or f"{base}/{first_name}" != guess
            or not found[1].segments(kind)
            or found[1].segments(kind)[0].info.name != first_name
        ):
            discard(first)
            first = None
        if found is None or kind not in found[1].kinds:
            return None
        infos = [segment.info for segment in found[1].segments(kind)]
        waiting = [first]

        @contextlib.contextmanager
        def opener(info: SegmentInfo) -> Iterator[Reader]:
            prefetched = waiting.pop() if waiting and info.name == first_name else None
            reader = self.objects.open_reader(f"{base}/{info.name}", info.stored_bytes, prefetched)
            try:
                yield reader
            finally:
                reader.close()

        # The directory only names the segments in log lines.
        return Snapshot(Path(f"s3-{self.config.bucket}") / base, infos, opener)
