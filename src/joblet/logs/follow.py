"""Follow jobs' log files: everything so far, then live output, then the end.

The launcher appends to one file per job; the file is the log's only copy on
the daemon's side, so the daemon's memory per job stays constant however much
a job prints, and any number of followers, joining at any time, each read the
whole log in order with nothing lost or duplicated.

Followers learn of new data from inotify (one descriptor for the daemon) and
of the job's end from `finish()`. Inotify instances and watches are counted per
real uid, and jobs run as uid 0 like the daemon (no user namespace): a job can
take them all (fs.inotify.max_user_instances, max_user_watches). A log the
hub cannot watch is then polled every `POLL_S`, so following degrades to a
short delay instead of failing the job's start or the daemon's.

The launcher writes a job's exit record only after it has drained the job's
pipes, so once a job is finished its log file is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from joblet.isolation.libc import IN_CLOSE_WRITE, IN_MODIFY, Inotify
from joblet.logs.format import RecordView
from joblet.logs.reader import LogCursor

log = logging.getLogger(__name__)

POLL_S = 0.2


class _Watch:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.finished = False
        self.wd = -1
        self._changed = asyncio.Event()

    def changed(self) -> asyncio.Event:
        return self._changed

    def notify(self) -> None:
        # Swap the event so a follower that grabbed the old one before reading
        # is woken by any write that lands after its read.
        old, self._changed = self._changed, asyncio.Event()
        old.set()


class LogHub:
    """Owns the inotify descriptor and the per-job watches."""

    def __init__(self, inotify: Callable[[], Inotify] = Inotify) -> None:
        self._watches: dict[str, _Watch] = {}
        self._by_wd: dict[int, _Watch] = {}
        self._new_inotify = inotify
        self._inotify: Inotify | None = None
        self._started = False
        self._poll: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._started = True
        try:
            self._inotify = self._new_inotify()
        except OSError as exc:
            log.warning("log following polls every %.1f s: no inotify instance (%s)", POLL_S, exc)
            return
        asyncio.get_running_loop().add_reader(self._inotify.fileno(), self._on_inotify)

    @property
    def polling(self) -> bool:
        """Whether some followed log is polled rather than watched."""
        return self._poll is not None

    def close(self) -> None:
        self._started = False
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None
        if self._inotify is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self._inotify.fileno())
            self._inotify.close()
            self._inotify = None
        for watch in self._watches.values():
            watch.notify()

    def track(self, job_id: str, path: Path, finished: bool = False) -> None:
        """Start watching a job's log file (created empty if missing)."""
        if job_id in self._watches:
            return
        watch = _Watch(path)
        watch.finished = finished
        self._watches[job_id] = watch
        if finished or not self._started:
            return
        path.touch(exist_ok=True)
        if self._inotify is not None:
            try:
                watch.wd = self._inotify.add_watch(str(path), IN_MODIFY | IN_CLOSE_WRITE)
            except OSError as exc:  # ENOSPC: the uid's watches are all taken
                log.warning("log of job %s polled: %s", job_id, exc)
            else:
                self._by_wd[watch.wd] = watch
                return
        self._schedule_poll()

    def _schedule_poll(self) -> None:
        if self._poll is None:
            self._poll = asyncio.get_running_loop().call_later(POLL_S, self._on_poll)

    def _on_poll(self) -> None:
        self._poll = None
        unwatched = [w for w in self._watches.values() if w.wd < 0 and not w.finished]
        for watch in unwatched:
            watch.notify()
        if unwatched and self._started:
            self._schedule_poll()

    def finish(self, job_id: str) -> None:
        """The job ended and its log is complete: release followers at EOF."""
        watch = self._watches.get(job_id)
        if watch is None:
            return
        watch.finished = True
        self._unwatch(watch)
        watch.notify()

    def forget(self, job_id: str) -> None:
        watch = self._watches.pop(job_id, None)
        if watch is not None:
            watch.finished = True
            self._unwatch(watch)
            watch.notify()

    def _unwatch(self, watch: _Watch) -> None:
        if watch.wd >= 0:
            self._by_wd.pop(watch.wd, None)
            if self._inotify is not None:
                with contextlib.suppress(OSError):
                    self._inotify.rm_watch(watch.wd)
            watch.wd = -1

    def _on_inotify(self) -> None:
        assert self._inotify is not None
        for wd, _mask, _name in self._inotify.read_events():
            watch = self._by_wd.get(wd)
            if watch is not None:
                watch.notify()

    def is_tracked(self, job_id: str) -> bool:
        return job_id in self._watches

    async def follow_records(
        self, job_id: str, live: bool = True
    ) -> AsyncIterator[list[RecordView]]:
        """Yield batches of the job's records: first those already written,
        then one empty batch (the reader caught up), then (if `live`) new ones
        as they are written, until the job ends. A batch's views are valid
        until the next one is asked for."""
        watch = self._watches.get(job_id)
        if watch is None:
            return
        try:
            fd = os.open(watch.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            cursor = LogCursor()
            caught_up = False
            while True:
                changed = watch.changed()
                finished = watch.finished
                records = cursor.read(fd)
                if records:
                    yield records
                    continue
                if not caught_up:
                    caught_up = True
                    yield records
                if finished or not live or self._watches.get(job_id) is not watch:
                    return
                await changed.wait()
        finally:
            os.close(fd)
