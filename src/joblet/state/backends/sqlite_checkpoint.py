"""WAL checkpoints off the write path.

SQLite's automatic checkpoint runs inside the commit that crosses its
threshold: that commit copies the WAL into the database file and fsyncs it,
and every write queued behind it waits (10-60 ms on a busy disk, once every
~30 batches of deletions while finished jobs are collected). The writer
connection here has the automatic checkpoint turned off; a second
connection on a thread of its own checkpoints instead. A PASSIVE checkpoint
takes no lock a writer needs, so commits go on while it copies and syncs.
Durability is unchanged: with synchronous=NORMAL a commit is in the WAL
either way, and the sync happens at the checkpoint either way.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

# WAL growth that asks for a checkpoint (SQLite's own default is 1,000 pages).
CHECKPOINT_WAL_BYTES = 1024 * 1024
# What a commit adds to the WAL besides its records: at least one page.
COMMIT_WAL_BYTES = 4096
TRUNCATE_TRIES = 3  # a writer committing meanwhile leaves frames to copy
TRUNCATE_PAUSE_S = 0.01


class Checkpointer:
    """Runs one checkpoint at a time on its own connection and thread."""

    def __init__(self, path: Path, wal_bytes: int = CHECKPOINT_WAL_BYTES) -> None:
        self._wal = Path(f"{path}-wal")
        self._wal_bytes = wal_bytes
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-checkpoint")
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        self._pending: Future[None] | None = None
        self._truncate = False
        self._closed = False
        self._written = 0  # WAL bytes (estimated) since the last checkpoint was asked for

    def after_write(self, written: int, *, shrink: bool = False) -> None:
        """Called by the writer after each commit of `written` bytes of
        records: a checkpoint once the WAL has grown by `wal_bytes` since the
        last one (or, with `shrink`, after a vacuum: the file shrinks at a
        checkpoint and the WAL is emptied). Never waits for it.

        Growth, not the file's size: a checkpointed WAL is reused from its
        start but keeps its size (up to journal_size_limit), so its size
        would ask for a checkpoint after every commit of a busy stream."""
        self._written += written + COMMIT_WAL_BYTES
        if not shrink and (
            self._written < self._wal_bytes or wal_size(self._wal) < self._wal_bytes
        ):
            return
        self._written = 0
        with self._lock:
            self._truncate |= shrink
            if self._closed or self._pending is not None:
                return  # the running one is followed by another (see _run)
            self._pending = self._executor.submit(self._run)

    def drain(self) -> None:
        """Block until no checkpoint is pending (tests, close)."""
        while True:
            with self._lock:
                pending = self._pending
            if pending is None:
                return
            pending.result()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.drain()
        self._executor.shutdown(wait=True)
        self._conn.close()

    def _run(self) -> None:
        try:
            self._checkpoint()
        except sqlite3.Error as exc:
            log.warning("state database: a checkpoint failed (the next one retries): %s", exc)
        with self._lock:
            # A vacuum asked for a shrink while this one ran: one more.
            again = self._truncate and not self._closed
            self._pending = self._executor.submit(self._run) if again else None

    def _checkpoint(self) -> None:
        with self._lock:
            truncate, self._truncate = self._truncate, False
        for _ in range(TRUNCATE_TRIES if truncate else 1):
            # PASSIVE: the copy and the sync happen while writers go on.
            busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not truncate:
                return
            if not busy and frames == copied:
                # Everything is copied: emptying the WAL holds the writer
                # lock only for the truncation.
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                return
            time.sleep(TRUNCATE_PAUSE_S)


def wal_size(wal: Path) -> int:
    try:
        return os.stat(wal).st_size
    except FileNotFoundError:
        return 0
