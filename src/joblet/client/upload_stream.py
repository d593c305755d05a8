"""Sending large uploads through UploadFiles: in 1 MiB chunks read as they go
(memory stays flat whatever the size), each file's SHA-256 checked by the
node, resumed where the node says after a broken stream."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import grpc

from joblet.api import joblet_pb2 as pb
from joblet.client.connection import translate_rpc_error
from joblet.client.errors import CliError
from joblet.client.uploads import UploadEntry, total_size

if TYPE_CHECKING:
    from joblet.client.connection import JobClient
    from joblet.client.progress import Progress

# Above this many bytes rnx streams its uploads instead of sending them in RunJob.
STREAM_THRESHOLD = 16 << 20
CHUNK_BYTES = 1 << 20
RESUMES = 3
_RESUMABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED})


@dataclass(frozen=True)
class Held:
    """What the node holds of one file."""

    size: int
    complete: bool


def open_session(client: JobClient, total: int) -> str:
    """A new session for `total` bytes; the node refuses a size over its
    limit here, before any file is read."""
    try:
        return client.upload_files(iter([pb.UploadChunk(totalSize=total)])).sessionId
    except grpc.RpcError as exc:
        raise translate_rpc_error(exc, client.address) from exc


def upload(client: JobClient, entries: Sequence[UploadEntry], progress: Progress | None) -> str:
    """Send `entries` into a new session; its id, for RunJobRequest.uploadSession."""
    session_id = open_session(client, total_size(entries))
    held: dict[str, Held] = {}
    for attempt in range(RESUMES + 1):
        local = _Failure()
        try:
            client.upload_files(local.watch(chunks(session_id, entries, held, progress)))
            return session_id
        except grpc.RpcError as exc:
            if local.error is not None:  # ours (a file unreadable), not the node's
                raise local.error from None
            if exc.code() not in _RESUMABLE or attempt == RESUMES:
                raise translate_rpc_error(exc, client.address) from exc
        held = where_to_resume(client, session_id)
        if progress is not None:
            progress.restart_at(sum(h.size for h in held.values()))
    raise AssertionError("unreachable")


class _Failure:
    """grpc reports an exception raised while reading the request iterator
    only as CANCELLED: keep it to report it as it is."""

    def __init__(self) -> None:
        self.error: CliError | None = None

    def watch(self, messages: Iterator[pb.UploadChunk]) -> Iterator[pb.UploadChunk]:
        try:
            yield from messages
        except CliError as exc:
            self.error = exc
            raise


def where_to_resume(client: JobClient, session_id: str) -> dict[str, Held]:
    try:
        state = client.upload_files(iter([pb.UploadChunk(sessionId=session_id)]))
    except grpc.RpcError as exc:
        raise translate_rpc_error(exc, client.address) from exc
    return {f.path: Held(f.size, f.complete) for f in state.files}


def chunks(
    session_id: str,
    entries: Sequence[UploadEntry],
    held: dict[str, Held],
    progress: Progress | None = None,
) -> Iterator[pb.UploadChunk]:
    """The stream's messages: each file's bytes the node lacks, its digest last."""
    yield pb.UploadChunk(sessionId=session_id)
    for entry in entries:
        have = held.get(entry.path, Held(0, False))
        if have.complete:
            continue
        if entry.is_directory:
            yield pb.UploadChunk(path=entry.path, mode=entry.mode, isDirectory=True)
            continue
        yield from _file_chunks(entry, have.size, progress)


def _file_chunks(
    entry: UploadEntry, start: int, progress: Progress | None
) -> Iterator[pb.UploadChunk]:
    assert entry.source is not None
    digest = hashlib.sha256()
    try:
        with entry.source.open("rb") as file:
            _hash_prefix(file, digest, start)
            offset = start
            while data := file.read(CHUNK_BYTES):
                digest.update(data)
                yield pb.UploadChunk(path=entry.path, offset=offset, data=data, mode=entry.mode)
                offset += len(data)
                if progress is not None:
                    progress.advance(len(data))
    except OSError as exc:
        raise CliError(f"cannot upload {entry.source}: {exc.strerror}") from exc
    if offset != entry.size:
        raise CliError(f"cannot upload {entry.source}: it changed size while being sent")
    yield pb.UploadChunk(path=entry.path, offset=offset, mode=entry.mode, sha256=digest.hexdigest())


def _hash_prefix(file: BinaryIO, digest: hashlib._Hash, length: int) -> None:
    """Hash the `length` bytes the node already holds (sent by an earlier stream)."""
    left = length
    while left > 0:
        data = file.read(min(CHUNK_BYTES, left))
        if not data:
            raise CliError("a file being uploaded got shorter while being sent")
        digest.update(data)
        left -= len(data)
