"""UploadFiles: a client stream of chunks into an upload session."""

from __future__ import annotations

from collections.abc import AsyncIterator

from joblet.api import joblet_pb2 as pb
from joblet.errors import InvalidArgument
from joblet.staging.session import Session, file_for
from joblet.staging.store import UploadStaging


async def receive(
    staging: UploadStaging, owner: str, chunks: AsyncIterator[pb.UploadChunk]
) -> pb.UploadSession:
    """Store the stream's chunks; the session as the node then holds it. A
    stream of one message with a session id and no path only reports it."""
    first = await anext(chunks, None)
    if first is None:
        raise InvalidArgument("UploadFiles: no chunk")
    if first.sessionId:
        session = staging.get(owner, first.sessionId)
    else:
        session = staging.open(owner, first.totalSize)
    staging.claim(session)
    try:
        _store(staging, session, first)
        async for chunk in chunks:
            if chunk.sessionId and chunk.sessionId != session.id:
                raise InvalidArgument("UploadFiles: one stream carries one session")
            _store(staging, session, chunk)
    finally:
        staging.release(session)
    return session_message(session, staging.timeout_s)


def _store(staging: UploadStaging, session: Session, chunk: pb.UploadChunk) -> None:
    if not chunk.path:
        if chunk.data:
            raise InvalidArgument("UploadFiles: a chunk with data needs a path")
        return
    staged = file_for(session, chunk.path, chunk.mode, chunk.isDirectory)
    staging.write(session, staged, chunk.offset, chunk.data)
    if chunk.sha256 or staged.is_directory:
        staging.finish(session, staged, chunk.sha256)


def session_message(session: Session, timeout_s: float) -> pb.UploadSession:
    return pb.UploadSession(
        sessionId=session.id,
        receivedBytes=session.received,
        totalSize=session.total_size,
        files=[
            pb.UploadedFile(path=f.path, size=f.size, complete=f.complete)
            for f in session.files.values()
        ],
        expiresInSeconds=int(timeout_s),
    )
