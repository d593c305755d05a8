"""Upload sessions on disk: ROOT/uploads/<session>/<n>, one file per upload.

Upload paths never reach the staging directory (files are numbered), so a
hostile path cannot place anything there; paths are resolved only when RunJob
writes the files into the workspace, by the same code as inline uploads. The
directory is emptied at start, and a session untouched for `timeout_s` goes
at the next call."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from joblet.errors import FailedPrecondition, InvalidArgument, NotFound
from joblet.jobs.model import Upload
from joblet.staging.session import Session, StagedFile, check_chunk, check_declared, check_digest

DEFAULT_TIMEOUT_S = 3600.0
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class UploadStaging:
    def __init__(
        self,
        directory: Path,
        limit_bytes: int,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self._limit = limit_bytes
        self.timeout_s = timeout_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._busy: set[str] = set()

    def reset(self) -> None:
        """Remove whatever an earlier daemon left: its sessions died with it."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    # ---- sessions ------------------------------------------------------

    def open(self, owner: str, total_size: int) -> Session:
        self.expire()
        check_declared(total_size, self._limit)
        session = Session(secrets.token_hex(16), owner, total_size, self._clock())
        self._dir(session).mkdir(mode=0o700)
        self._sessions[session.id] = session
        return session

    def get(self, owner: str, session_id: str) -> Session:
        """The caller's own session; another client's is as unknown as a missing one."""
        self.expire()
        session = self._sessions.get(session_id)
        if session is None or session.owner != owner:
            raise NotFound(f"upload session {session_id!r} not found (or expired)")
        session.touched_at = self._clock()
        return session

    def claim(self, session: Session) -> None:
        """One stream at a time per session: two writers would interleave."""
        if session.id in self._busy:
            raise FailedPrecondition(f"upload session {session.id} is in use by another stream")
        self._busy.add(session.id)

    def release(self, session: Session) -> None:
        self._busy.discard(session.id)

    def expire(self) -> None:
        cutoff = self._clock() - self.timeout_s
        for session in list(self._sessions.values()):
            if session.touched_at < cutoff and session.id not in self._busy:
                self.discard(session)

    def discard(self, session: Session) -> None:
        self._sessions.pop(session.id, None)
        shutil.rmtree(self._dir(session), ignore_errors=True)

    # ---- data ----------------------------------------------------------

    def write(self, session: Session, staged: StagedFile, offset: int, data: bytes) -> None:
        check_chunk(session, staged, offset, len(data))
        session.touched_at = self._clock()
        if staged.is_directory or (not data and staged.size):
            return
        fd = os.open(self._file(session, staged), _FILE_FLAGS, 0o600)
        try:
            view = memoryview(data)
            at = offset
            while view:
                written = os.pwrite(fd, view, at)
                view, at = view[written:], at + written
        finally:
            os.close(fd)
        staged.digest.update(data)
        staged.size += len(data)

    def finish(self, session: Session, staged: StagedFile, sha256_hex: str) -> None:
        """Complete a file whose bytes match `sha256_hex`; a mismatch discards
        its bytes so the client sends it again from offset 0."""
        if staged.complete:
            return
        if staged.is_directory:
            staged.complete = True
            return
        if not check_digest(staged, sha256_hex):
            staged.size = 0
            staged.digest = hashlib.sha256()
            self._file(session, staged).unlink(missing_ok=True)
            raise InvalidArgument(
                f"upload {staged.path!r}: sha256 mismatch, its bytes were discarded "
                "(send it again from offset 0)"
            )
        staged.complete = True

    def take(self, owner: str, session_id: str) -> tuple[Session, tuple[Upload, ...]]:
        """The uploads of a complete session, for RunJob; the session is then
        no longer listed (`discard` removes its files once they are copied)."""
        session = self.get(owner, session_id)
        if session.id in self._busy:
            raise FailedPrecondition(f"upload session {session.id} is still receiving")
        missing = [f.path for f in session.files.values() if not f.complete]
        if missing:
            raise FailedPrecondition(
                f"upload session {session.id} is not complete: {', '.join(missing[:5])}"
            )
        self._sessions.pop(session.id)
        uploads = tuple(
            Upload(
                path=f.path,
                content=b"",
                mode=f.mode,
                is_directory=f.is_directory,
                source=str(self._file(session, f)) if not f.is_directory else "",
                size=f.size,
            )
            for f in session.files.values()
        )
        return session, uploads

    def _dir(self, session: Session) -> Path:
        return self.directory / session.id

    def _file(self, session: Session, staged: StagedFile) -> Path:
        return self._dir(session) / str(staged.number)
