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
from joblet.persist.archive.objects import ObjectStore, Reader
from joblet.persist.store import Snapshot
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

    def snapshot(self, kind: str, job_id: str) -> Snapshot | None:
        found = self.manifest(job_id)
        if found is None:
            return None
        node, manifest = found
        if kind not in manifest.kinds:
            return None
        infos = [segment.info for segment in manifest.segments(kind)]
        base = keys.job_prefix(self.config.prefix, node, job_id) + kind

        @contextlib.contextmanager
        def opener(info: SegmentInfo) -> Iterator[Reader]:
            reader = self.objects.open_reader(f"{base}/{info.name}", info.stored_bytes)
            try:
                yield reader
            finally:
                reader.close()

        # The directory only names the segments in log lines.
        return Snapshot(Path(f"s3-{self.config.bucket}") / base, infos, opener)
