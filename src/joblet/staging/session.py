"""The pure half of an upload session: which chunk is acceptable where.

A session belongs to one client (its certificate's name), declares its total
size up front, and holds files that grow only by appending at their current
end. Nothing here touches the disk; `staging.store` does what this decides."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from joblet.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from joblet.jobs.uploads import normalize_upload_path, upload_mode

MAX_CHUNK_BYTES = 1 << 20
MAX_FILES = 100_000
_SHA256_HEX = 64


@dataclass
class StagedFile:
    path: str  # normalised, relative to the workspace
    number: int  # its name in the staging directory: paths never reach the disk
    mode: int
    is_directory: bool
    size: int = 0
    complete: bool = False
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)


@dataclass
class Session:
    id: str
    owner: str
    total_size: int
    touched_at: float
    files: dict[str, StagedFile] = field(default_factory=dict)

    @property
    def received(self) -> int:
        return sum(f.size for f in self.files.values())

    @property
    def complete(self) -> bool:
        return all(f.complete for f in self.files.values())


def check_declared(total_size: int, limit: int) -> None:
    """Refuse a session whose declared size the node would never take."""
    if total_size < 0:
        raise InvalidArgument(f"totalSize {total_size} is negative")
    if limit and total_size > limit:
        raise ResourceExhausted(
            f"uploads of {total_size} bytes are over this server's limit "
            f"joblet.maxUploadSize ({limit} bytes)"
        )


def file_for(session: Session, path: str, mode: int, is_directory: bool) -> StagedFile:
    """The session's file at `path`, made when new. Raises on a bad path or mode."""
    normal = normalize_upload_path(path)
    staged = session.files.get(normal)
    if staged is not None:
        return staged
    if len(session.files) >= MAX_FILES:
        raise ResourceExhausted(f"an upload session holds at most {MAX_FILES} files")
    if not 0 <= mode <= 0o7777:
        raise InvalidArgument(f"upload {normal!r}: mode {mode:#o} is out of range 0..0o7777")
    staged = StagedFile(normal, len(session.files), upload_mode(mode, is_directory), is_directory)
    session.files[normal] = staged
    return staged


def check_chunk(session: Session, staged: StagedFile, offset: int, size: int) -> None:
    """Refuse a chunk that is not the file's next bytes or would overrun the session."""
    if size > MAX_CHUNK_BYTES:
        raise InvalidArgument(f"a chunk holds at most {MAX_CHUNK_BYTES} bytes, got {size}")
    if staged.complete and size:
        raise FailedPrecondition(f"upload {staged.path!r} is already complete")
    if staged.is_directory and size:
        raise InvalidArgument(f"upload {staged.path!r} is a directory but carries content")
    if offset != staged.size:
        raise FailedPrecondition(
            f"upload {staged.path!r}: chunk at offset {offset}, the node holds "
            f"{staged.size} bytes of it (resume there)"
        )
    if session.received + size > session.total_size:
        raise ResourceExhausted(
            f"upload session {session.id}: more than the {session.total_size} bytes declared"
        )


def check_digest(staged: StagedFile, sha256_hex: str) -> bool:
    """Whether the file's bytes have this SHA-256 (hex); a malformed digest is refused."""
    text = sha256_hex.lower()
    if len(text) != _SHA256_HEX or any(c not in "0123456789abcdef" for c in text):
        raise InvalidArgument(f"upload {staged.path!r}: sha256 must be 64 hex digits")
    return staged.digest.hexdigest() == text
