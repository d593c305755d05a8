"""The SQLite store gives space back: records with big (but allowed)
environments deleted, the file (and its WAL) shrinks again at the next
checkpoint; a file made before auto-vacuum is converted once at open."""

import os
import sqlite3
import threading
from pathlib import Path

from joblet.jobs.request_limits import MAX_ENV_BYTES
from joblet.state.backends.sqlite import SqliteBackend

JOBS = 24
BOUND = 512 * 1024  # what an empty store may keep: schema, a few pages, WAL


def on_disk(path: Path) -> int:
    return sum(
        os.path.getsize(f"{path}{suffix}")
        for suffix in ("", "-wal")
        if os.path.exists(f"{path}{suffix}")
    )


def big_record(n: int) -> bytes:
    # A job whose environment is at the request limit: stored as it came.
    return f"job {n} ".encode() + os.urandom(MAX_ENV_BYTES)


async def test_deleted_jobs_give_their_space_back(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    backend = await SqliteBackend.open(path)
    try:
        await backend.write_many([(f"job-{n}", big_record(n), None) for n in range(JOBS)])
        assert on_disk(path) > JOBS * MAX_ENV_BYTES
        for n in range(JOBS // 2):
            await backend.delete(f"job-{n}")
        await backend.write_many([(f"job-{n}", None, None) for n in range(JOBS // 2, JOBS)])
        assert await backend.list_all() == []
        await backend.checkpointed()
        assert on_disk(path) < BOUND, on_disk(path)
        await backend.put("after", b"still works")
        assert await backend.get("after") == b"still works"
    finally:
        await backend.close()


async def test_a_big_record_replaced_by_a_small_one_gives_space_back(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    backend = await SqliteBackend.open(path)
    try:
        for n in range(4):
            await backend.put(f"job-{n}", big_record(n))
        for n in range(4):
            await backend.put(f"job-{n}", b"small")
        await backend.checkpointed()
        assert on_disk(path) < BOUND, on_disk(path)
    finally:
        await backend.close()


async def test_a_file_without_auto_vacuum_is_converted_at_open(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    old = sqlite3.connect(path)  # as an older version made it
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, record BLOB, expires_at REAL)")
    with old:
        old.executemany(
            "INSERT INTO jobs VALUES (?, ?, NULL)", [(f"job-{n}", big_record(n)) for n in range(8)]
        )
    with old:
        old.execute("DELETE FROM jobs WHERE job_id != 'job-0'")
    old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    old.close()
    assert on_disk(path) > 8 * MAX_ENV_BYTES  # an old file never shrinks
    backend = await SqliteBackend.open(path)
    try:
        assert [job_id for job_id, _ in await backend.list_all()] == ["job-0"]
        assert on_disk(path) < MAX_ENV_BYTES + BOUND, on_disk(path)
        await backend.delete("job-0")
        await backend.checkpointed()
        assert on_disk(path) < BOUND, on_disk(path)
    finally:
        await backend.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # INCREMENTAL
    check.close()


async def test_a_commit_never_checkpoints_the_wal_itself(tmp_path: Path) -> None:
    """With the checkpointer's thread held, writes go on and the WAL grows past
    SQLite's automatic threshold (1,000 pages): no commit copied it back
    itself. Once the thread is free, the next checkpoint empties it."""
    path = tmp_path / "jobs.db"
    backend = await SqliteBackend.open(path)
    held = threading.Event()
    try:
        backend._checkpointer._executor.submit(held.wait)
        records = 8 * 1024 * 1024 // MAX_ENV_BYTES
        for n in range(records):
            await backend.put(f"job-{n}", big_record(n))
        assert os.path.getsize(f"{path}-wal") > 6 * 1024 * 1024
        held.set()
        await backend.write_many([(f"job-{n}", None, None) for n in range(records)])
        await backend.checkpointed()
        assert on_disk(path) < BOUND, on_disk(path)
    finally:
        held.set()
        await backend.close()
