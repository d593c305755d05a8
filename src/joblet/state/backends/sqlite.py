"""The default store: one SQLite file under ROOT/state/, no server needed.

All access goes through one dedicated thread that owns the connection, so
operations run in the order they were awaited even when a caller gave up
waiting on one (a timed-out write still finishes before the next one starts).
WAL mode with synchronous=NORMAL: a committed write survives the helper being
killed; only an OS crash or power loss may lose the last few.

A file that is not a database or fails `PRAGMA quick_check` (truncated,
overwritten) does not stop the helper: the records still readable are
salvaged, the bad file is moved aside as `<name>.corrupt-<time>`, a fresh
file is started with what was salvaged, and all of it is logged at ERROR.

Space goes back to the file system: the file uses incremental auto-vacuum
(a file made before that is converted once, with a VACUUM, at open), and a
write that leaves many free pages gives them back and truncates the WAL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from joblet.state.backends.base import StateBackendError, Write, expiry
from joblet.state.backends.sqlite_checkpoint import Checkpointer

log = logging.getLogger(__name__)
T = TypeVar("T")
Row = tuple[str, bytes, float | None]

_SCHEMA = """CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    record BLOB NOT NULL,
    expires_at REAL
)"""
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
# Free pages are given back once there are this many and they are this
# fraction of the file: fewer are cheaper to reuse than to move.
VACUUM_MIN_FREE_PAGES = 256
VACUUM_MIN_FREE_FRACTION = 0.125
# The WAL is cut back to this size at each checkpoint (SQLite otherwise keeps
# its largest size for reuse).
WAL_SIZE_LIMIT = 4 * 1024 * 1024
_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


class SqliteBackend:
    def __init__(
        self, conn: sqlite3.Connection, executor: ThreadPoolExecutor, checkpointer: Checkpointer
    ) -> None:
        self._conn = conn
        self._executor = executor
        self._checkpointer = checkpointer

    @classmethod
    async def open(cls, path: Path) -> SqliteBackend:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, open_database, path)
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise StateBackendError(f"cannot open state database {path}: {exc}") from exc
        try:
            checkpointer = await loop.run_in_executor(executor, Checkpointer, path)
        except sqlite3.Error as exc:
            conn.close()
            executor.shutdown(wait=False)
            raise StateBackendError(f"cannot open state database {path}: {exc}") from exc
        # Checkpoints happen on the checkpointer's thread, never in a commit.
        await loop.run_in_executor(executor, conn.execute, "PRAGMA wal_autocheckpoint=0")
        return cls(conn, executor, checkpointer)

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except sqlite3.Error as exc:
            raise StateBackendError(f"sqlite: {exc}") from exc

    async def put(self, job_id: str, record: bytes, ttl_s: float | None = None) -> None:
        row = (job_id, bytes(record), expiry(ttl_s))
        await self._run(lambda: self._write("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)", row))

    async def delete(self, job_id: str) -> None:
        await self._run(lambda: self._write("DELETE FROM jobs WHERE job_id = ?", (job_id,)))

    async def write_many(self, writes: Sequence[Write]) -> None:
        """Several puts and deletes in order, in one transaction: one commit
        instead of one per write."""
        now = time.time()
        rows = [
            (job_id, None if record is None else bytes(record), expiry(ttl, now))
            for job_id, record, ttl in writes
        ]
        await self._run(lambda: self._write_rows(rows))

    def _write_rows(self, rows: list[tuple[str, bytes | None, float | None]]) -> None:
        self._write_rows_in_transaction(rows)
        self._after_write(sum(len(job_id) + len(record or b"") for job_id, record, _ in rows))

    def _after_write(self, written: int) -> None:
        shrink = give_back_free_pages(self._conn)
        self._checkpointer.after_write(written, shrink=shrink)

    def _write_rows_in_transaction(
        self, rows: list[tuple[str, bytes | None, float | None]]
    ) -> None:
        with self._conn:
            for job_id, record, expires_at in rows:
                if record is None:
                    self._conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
                else:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)", (job_id, record, expires_at)
                    )

    async def get(self, job_id: str) -> bytes | None:
        sql = f"SELECT record FROM jobs WHERE job_id = ? AND {_LIVE}"
        row = await self._run(lambda: self._conn.execute(sql, (job_id, time.time())).fetchone())
        return None if row is None else _blob(row[0])

    async def list_all(self) -> list[tuple[str, bytes]]:
        sql = f"SELECT job_id, record FROM jobs WHERE {_LIVE} ORDER BY rowid"
        rows = await self._run(lambda: self._conn.execute(sql, (time.time(),)).fetchall())
        return [(str(job_id), _blob(record)) for job_id, record in rows]

    async def checkpointed(self) -> None:
        """Wait for the checkpoints asked for so far (the file's size is
        final then)."""
        await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.drain)

    async def close(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.close)
            await self._run(self._conn.close)
        finally:
            self._executor.shutdown(wait=False)

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        with self._conn:  # one transaction, committed on exit
            self._conn.execute(sql, params)
        self._after_write(sum(len(p) for p in params if isinstance(p, str | bytes)))


def give_back_free_pages(conn: sqlite3.Connection) -> bool:
    """Move the file's free pages to its end when there are many (after
    deletes, or a big record replaced by a small one); True if it did: the
    file shrinks at the next checkpoint (sqlite_checkpoint.py)."""
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    total = int(conn.execute("PRAGMA page_count").fetchone()[0])
    if free < VACUUM_MIN_FREE_PAGES or free < total * VACUUM_MIN_FREE_FRACTION:
        return False
    # Through execute() the pragma frees one page (one step); a script runs
    # it to the end.
    conn.executescript("PRAGMA incremental_vacuum;")
    return True


def open_database(path: Path) -> sqlite3.Connection:
    """A checked connection to `path`, replacing a corrupt file (see the module doc)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return _connect_checked(path)
    except sqlite3.DatabaseError as exc:
        log.error("STATE DATABASE %s IS CORRUPT (%s); recovering what can be read", path, exc)
    rows = salvage_rows(path)
    aside = _move_aside(path)
    conn = _connect_checked(path)
    with conn:
        conn.executemany("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)", rows)
    log.error(
        "state database: moved the corrupt file to %s and started a fresh %s "
        "with the %d records that could be read",
        aside,
        path,
        len(rows),
    )
    return conn


def _connect_checked(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    try:
        # Takes effect on a new file only (before its first table).
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        conn.execute(_SCHEMA)
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("quick_check: " + "; ".join(map(str, problems[:5])))
        _convert_to_incremental_vacuum(conn, path)
    except BaseException:
        conn.close()
        raise
    os.chmod(path, 0o600)
    return conn


def _convert_to_incremental_vacuum(conn: sqlite3.Connection, path: Path) -> None:
    """A file made without auto-vacuum (by an older version) never shrinks;
    the mode of a file with tables changes only with a VACUUM, done once."""
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == _INCREMENTAL:
        return
    before = path.stat().st_size
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    log.info(
        "state database %s: converted to incremental vacuum (%d -> %d bytes)",
        path, before, path.stat().st_size,
    )  # fmt: skip


def salvage_rows(path: Path) -> list[Row]:
    """Every row of `path`'s jobs table that can still be read, in order."""
    whole = _whole_pages(path)
    if whole is None:
        return _read_rows(path)
    # SQLite reads a page cut short by a truncation as zero-filled, which
    # would pass as a record: read a copy without the partial page.
    copy = path.with_name(f"{path.name}.salvage")
    try:
        shutil.copyfile(path, copy)
        os.truncate(copy, whole)
        return _read_rows(copy)
    finally:
        copy.unlink(missing_ok=True)


def _whole_pages(path: Path) -> int | None:
    """The size of `path`'s whole pages when its last page is cut short, else None."""
    try:
        with path.open("rb") as file:
            header = file.read(100)
            size = os.fstat(file.fileno()).st_size
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return None
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or size % page_size == 0:
        return None
    return size - size % page_size


def _read_rows(path: Path) -> list[Row]:
    """The rows `salvage_rows` returns, read from `path`.

    Rows live in rowid order across leaf pages; a damaged page stops a scan,
    but a new scan that seeks past that page's rowids reads on. Where the
    damage ends is found by probing (`_next_readable`)."""
    rows: list[Row] = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return rows
    try:
        # SQLite refuses a file shorter than its header says (truncated) unless
        # writable_schema is on; the connection is read-only, so this is safe.
        conn.execute("PRAGMA writable_schema=ON")
        start: int | None = 0
        while start is not None:
            failed_at = _scan_from(conn, start, rows)
            start = None if failed_at is None else _next_readable(conn, failed_at)
    except sqlite3.Error as exc:
        log.error("state database: no rows readable past %d records: %s", len(rows), exc)
    finally:
        conn.close()
    return rows


_FROM = "SELECT rowid, job_id, record, expires_at FROM jobs WHERE rowid >= ? ORDER BY rowid"
SALVAGE_PROBES = 64  # seeks tried past one damaged stretch before giving up
MAX_ROWID = 2**63 - 1


def _scan_from(conn: sqlite3.Connection, start: int, rows: list[Row]) -> int | None:
    """Append the sound rows from rowid `start` on; None at the end of the
    table, else the rowid after the last one read when the scan broke."""
    position = start
    try:
        for rowid, *row in conn.execute(_FROM, (start,)):
            position = int(rowid) + 1
            if _is_sound(tuple(row)):
                rows.append((row[0], bytes(row[1]), row[2]))
    except sqlite3.Error as exc:
        log.error("state database: a damaged page after row %d: %s", position - 1, exc)
        return position
    return None


def _next_readable(conn: sqlite3.Connection, failed_at: int) -> int | None:
    """The smallest rowid past `failed_at` a scan can start from, or None.

    Seeks from `failed_at` on fail while they land on the damaged page and
    succeed past it: probe forward with doubling steps, then bisect back to
    the first seek that works, so no row after the damage is skipped."""
    bad, step = failed_at, 1
    for _ in range(SALVAGE_PROBES):
        probe = min(failed_at + step, MAX_ROWID)
        if _seek_works(conn, probe):
            good = probe
            while good - bad > 1:
                middle = (bad + good) // 2
                bad, good = (bad, middle) if _seek_works(conn, middle) else (middle, good)
            return good
        if probe == MAX_ROWID:
            return None
        bad, step = probe, step * 2
    return None


def _seek_works(conn: sqlite3.Connection, rowid: int) -> bool:
    try:
        conn.execute(_FROM, (rowid,)).fetchone()
    except sqlite3.Error:
        return False
    return True


def _is_sound(row: tuple[object, ...]) -> bool:
    """A damaged page can yield NULLs or wrong types: keep only well-formed rows."""
    job_id, record, expires_at = row
    return (
        isinstance(job_id, str)
        and isinstance(record, bytes)
        and (expires_at is None or isinstance(expires_at, int | float))
    )


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    count = 1
    while aside.exists():
        count += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{count}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(f"{aside}{suffix}")
    return aside


def _blob(value: object) -> bytes:
    # A row written by hand or another tool may hold TEXT: take it as UTF-8
    # rather than fail the whole listing (a bad record is reported when decoded).
    return value.encode() if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]
