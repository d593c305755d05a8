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
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from joblet.state.backends.base import StateBackendError, Write, expiry

log = logging.getLogger(__name__)
T = TypeVar("T")
Row = tuple[str, bytes, float | None]

_SCHEMA = """CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    record BLOB NOT NULL,
    expires_at REAL
)"""
_LIVE = "(expires_at IS NULL OR expires_at > ?)"


class SqliteBackend:
    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor

    @classmethod
    async def open(cls, path: Path) -> SqliteBackend:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, open_database, path)
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise StateBackendError(f"cannot open state database {path}: {exc}") from exc
        return cls(conn, executor)

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

    async def close(self) -> None:
        try:
            await self._run(self._conn.close)
        finally:
            self._executor.shutdown(wait=False)

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        with self._conn:  # one transaction, committed on exit
            self._conn.execute(sql, params)


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
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("quick_check: " + "; ".join(map(str, problems[:5])))
    except BaseException:
        conn.close()
        raise
    os.chmod(path, 0o600)
    return conn


def salvage_rows(path: Path) -> list[Row]:
    """Every row of `path`'s jobs table that can still be read, in order.

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
