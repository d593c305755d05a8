"""`joblet history export JOB_ID DIR` and `joblet history import DIR/JOB_ID`.

An export is the archive's layout on disk, readable with any tools:

    DIR/JOB_ID/logs/seg-00000001.zst ...   the segments, as persist wrote them
    DIR/JOB_ID/metrics/seg-00000001.zst ...
    DIR/JOB_ID/manifest.json               what they are, with SHA-256 each

It is taken from this node's disk when the job's history is there, else from
the configured archive (any node's, by id). An import checks every checksum,
then puts the history on this node's disk (sealed, as a finished job's), where
persist serves it and, with the s3 backend, archives it under this node.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from joblet.errors import AlreadyExists, InvalidArgument, JobletError, NotFound
from joblet.persist.archive.keys import KINDS, MANIFEST
from joblet.persist.archive.manifest import ArchivedSegment, Manifest
from joblet.persist.archive.objects import HASH_STEP, ArchiveError, file_sha256
from joblet.persist.config import PersistConfig, resolve_node_id
from joblet.persist.store import check_job_id
from joblet.persist.store.history import JobIndex, load_index, save_index


def export_job(config: PersistConfig, job_id: str, target: Path) -> Path:
    """Write the job's history under target/JOB_ID; returns that directory."""
    check_job_id(job_id)
    out = target / job_id
    if out.exists():
        raise AlreadyExists(f"{out} exists")
    target.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{job_id}.", dir=target))
    try:
        if any((config.root / kind / job_id).is_dir() for kind in KINDS):
            manifest = _export_local(config, job_id, work)
        else:
            manifest = _export_remote(config, job_id, work)
        (work / MANIFEST).write_bytes(manifest.to_bytes())
        os.rename(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def _export_local(config: PersistConfig, job_id: str, work: Path) -> Manifest:
    manifest = Manifest(job_id, config.node_id or "local", time.time(), 0.0)
    for kind in KINDS:
        directory = config.root / kind / job_id
        if not directory.is_dir():
            continue
        (work / kind).mkdir()
        segments = []
        for info in load_index(directory).segments:
            copy = work / kind / info.name
            shutil.copyfile(directory / info.name, copy)
            info.stored_bytes = copy.stat().st_size
            segments.append(ArchivedSegment(info, file_sha256(copy)))
            manifest.last_write = max(manifest.last_write, copy.stat().st_mtime)
        manifest.kinds[kind] = segments
    return manifest


def _export_remote(config: PersistConfig, job_id: str, work: Path) -> Manifest:
    if config.s3 is None:
        raise NotFound(f"no history for job {job_id} on this node (persist.backend is local)")
    from joblet.persist.archive.objects import open_s3
    from joblet.persist.archive.remote import RemoteHistory

    objects = open_s3(config.s3)
    try:
        found = RemoteHistory(objects, config.s3, resolve_node_id(config)).manifest(job_id)
        if found is None:
            raise NotFound(f"no history for job {job_id} here or in s3://{config.s3.bucket}")
        node, manifest = found
        from joblet.persist.archive.keys import segment_key

        for kind, segments in manifest.kinds.items():
            if kind not in KINDS:
                raise InvalidArgument(f"the manifest of job {job_id} names a kind {kind!r}")
            (work / kind).mkdir()
            for segment in segments:
                name = _plain(segment.info.name)
                key = segment_key(config.s3.prefix, node, job_id, kind, name)
                reader = objects.open_reader(key, segment.info.stored_bytes)
                try:
                    with (work / kind / name).open("wb") as out:
                        while chunk := reader.read(HASH_STEP):
                            out.write(chunk)
                finally:
                    reader.close()
                _verify(work / kind / name, segment)
    except ArchiveError as exc:
        raise JobletError(f"the history archive failed: {exc}") from exc
    return manifest


def _verify(path: Path, segment: ArchivedSegment) -> None:
    if file_sha256(path) != segment.sha256:
        raise InvalidArgument(f"{path}: checksum does not match the manifest")


def import_job(config: PersistConfig, source: Path) -> str:
    """Check an export (source: DIR/JOB_ID) and put it on this node's disk."""
    try:
        manifest = Manifest.from_bytes((source / MANIFEST).read_bytes())
    except FileNotFoundError as exc:
        raise InvalidArgument(f"{source} holds no {MANIFEST} (not an export)") from exc
    except ValueError as exc:
        raise InvalidArgument(f"{source / MANIFEST}: {exc}") from exc
    job_id = check_job_id(manifest.job_id)
    for kind, segments in manifest.kinds.items():
        if kind not in KINDS:
            raise InvalidArgument(f"{source / MANIFEST}: unknown kind {kind!r}")
        for segment in segments:
            _verify(source / kind / _plain(segment.info.name), segment)
    taken = [kind for kind in manifest.kinds if (config.root / kind / job_id).exists()]
    if taken:
        raise AlreadyExists(f"job {job_id} already has {taken[0]} history on this node")
    for kind, segments in manifest.kinds.items():
        _place(config.root / kind, job_id, source / kind, segments)
    return job_id


def _plain(name: str) -> str:
    """A segment's file name, never a path."""
    if "/" in name or name in ("", ".", "..") or not name.endswith(".zst"):
        raise InvalidArgument(f"bad segment name {name!r} in the manifest")
    return name


def _place(store_root: Path, job_id: str, source: Path, segments: list[ArchivedSegment]) -> None:
    store_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".import-{job_id}.", dir=store_root))
    try:
        for segment in segments:
            shutil.copyfile(source / segment.info.name, work / segment.info.name)
        save_index(work, JobIndex(sealed=True, segments=[s.info for s in segments]))
        os.rename(work, store_root / job_id)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
