"""The pure rules of an upload session, and the staging store on a temp dir."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from joblet.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from joblet.staging.session import MAX_CHUNK_BYTES, Session, check_chunk, check_declared, file_for
from joblet.staging.store import UploadStaging


def test_declared_size_over_the_limit_names_it() -> None:
    check_declared(100, 100)
    with pytest.raises(ResourceExhausted, match=r"joblet.maxUploadSize \(100 bytes\)"):
        check_declared(101, 100)
    with pytest.raises(InvalidArgument):
        check_declared(-1, 100)


def test_chunks_append_at_the_end_only() -> None:
    session = Session("s", "alice", 10, 0.0)
    staged = file_for(session, "a/b", 0o644, False)
    check_chunk(session, staged, 0, 10)
    staged.size = 4
    for offset in (0, 3, 5):
        with pytest.raises(FailedPrecondition, match="holds 4 bytes"):
            check_chunk(session, staged, offset, 1)
    with pytest.raises(ResourceExhausted, match="more than the 10 bytes declared"):
        check_chunk(session, staged, 4, 7)
    with pytest.raises(InvalidArgument, match="at most"):
        check_chunk(session, staged, 4, MAX_CHUNK_BYTES + 1)


def test_file_modes_never_keep_setuid() -> None:
    session = Session("s", "alice", 10, 0.0)
    assert file_for(session, "x", 0o6755, False).mode == 0o755
    with pytest.raises(InvalidArgument):
        file_for(session, "y", 0o17777, False)
    with pytest.raises(InvalidArgument):
        file_for(session, "../y", 0, False)


def test_store_writes_checks_and_expires(tmp_path: Path) -> None:
    now = [0.0]
    staging = UploadStaging(tmp_path / "up", 100, timeout_s=60, clock=lambda: now[0])
    staging.reset()
    session = staging.open("alice", 6)
    staged = file_for(session, "f", 0, False)
    staging.write(session, staged, 0, b"abc")
    staging.write(session, staged, 3, b"def")
    staging.finish(session, staged, hashlib.sha256(b"abcdef").hexdigest())
    with pytest.raises(NotFound):
        staging.get("bob", session.id)
    _, uploads = staging.take("alice", session.id)
    assert [(u.path, u.size, Path(u.source).read_bytes()) for u in uploads] == [("f", 6, b"abcdef")]
    staging.discard(session)
    old = staging.open("alice", 1)
    now[0] = 61.0
    staging.expire()
    assert not (tmp_path / "up" / old.id).exists()
    with pytest.raises(NotFound):
        staging.get("alice", old.id)
