"""One job as the launcher tracks it, from fork to its exit record."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import select
import selectors
import time
from typing import TYPE_CHECKING, Any

from joblet.isolation import records
from joblet.isolation.prepare import InitKey, ParentEnds
from joblet.isolation.relay import LogRelay
from joblet.isolation.spec import LaunchSpec
from joblet.isolation.wire import Connection
from joblet.logs.format import Stream

if TYPE_CHECKING:
    from joblet.isolation.launcher import Launcher

# After the init exits the kernel kills the whole pid namespace, so the pipes
# reach end of file at once; this only bounds a pathological case.
DRAIN_LIMIT_S = 1.0


class JobProc:
    def __init__(
        self,
        spec: LaunchSpec,
        ends: ParentEnds,
        conn: Connection,
        rid: Any,
        spare_key: InitKey | None = None,
    ) -> None:
        self.spec = spec
        self.spare_key = spare_key  # launches like this one may use a spare init
        self.job_id = spec.job_id
        self.relay = LogRelay(spec.log_path, spec.max_log_bytes)
        self.streams = {ends.stdout_r: Stream.STDOUT, ends.stderr_r: Stream.STDERR}
        self.err_r = ends.err_r
        self.error = b""
        self.conn: Connection | None = conn
        self.rid = rid
        self.pid = 0  # the job's init (tini), as a host pid, once cloned
        self.err_closed = False
        self.launched = False
        self.status: int | None = None
        self.ended_at_ns = 0
        self.deadline = 0.0
        self.done = False

    def watch(self, launcher: Launcher) -> None:
        read = selectors.EVENT_READ
        for fd in self.streams:
            launcher.sel.register(fd, read, functools.partial(self._on_stream, launcher, fd))
        launcher.sel.register(self.err_r, read, functools.partial(self._on_err, launcher))

    def started(self, launcher: Launcher, pid: int) -> None:
        """The launcher cloned the job's init: `pid` is its host pid."""
        self.pid = pid
        launcher.learned_pid(self)
        self._decide(launcher)

    def _on_err(self, launcher: Launcher) -> None:
        data = os.read(self.err_r, 4096)
        if data:
            self.error += data
            return
        launcher.unwatch(self.err_r)
        os.close(self.err_r)
        self.err_closed = True
        self._decide(launcher)

    def _decide(self, launcher: Launcher) -> None:
        """Answer the launch once exec succeeded (error pipe closed empty) or failed."""
        if not self.err_closed or self.pid == 0 or self.conn is None:
            return
        conn, self.conn = self.conn, None
        if self.error:
            message = self.error.decode(errors="replace")
            launcher.reply(conn, self.rid, {"ok": False, "error": message})
        else:
            self.launched = True
            # Answered first: the record only serves a restarted launcher.
            launcher.reply(conn, self.rid, {"ok": True, "pid": self.pid})
            ticks = records.read_start_ticks(self.pid, launcher.host.procfs) or 0
            record = records.RunningRecord(self.job_id, self.pid, ticks, self.spec.job_dir)
            # Without room for it (a full disk) only a restarted launcher loses
            # sight of the job; this one must go on.
            with contextlib.suppress(OSError):
                records.save_running(launcher.state_dir, record)
            if self.spare_key is not None:
                launcher.make_spare(self.spare_key)
        self.maybe_finish(launcher)

    def exited(self, status: int) -> None:
        self.status = status
        self.ended_at_ns = time.time_ns()
        self.deadline = time.monotonic() + DRAIN_LIMIT_S

    def _on_stream(self, launcher: Launcher, fd: int) -> None:
        if not self.relay.pump(fd, self.streams[fd]):
            self._close_stream(launcher, fd)
            self.maybe_finish(launcher)

    def _close_stream(self, launcher: Launcher, fd: int) -> None:
        launcher.unwatch(fd)
        os.close(fd)
        del self.streams[fd]

    def maybe_finish(self, launcher: Launcher) -> None:
        if self.done or self.conn is not None or self.status is None:
            return
        if self.streams and time.monotonic() < self.deadline:
            return
        self._finish(launcher)

    def _finish(self, launcher: Launcher) -> None:
        self.done = True
        for fd in list(self.streams):
            while self.relay.pump(fd, self.streams[fd]):
                if not _readable(fd):
                    break
            self._close_stream(launcher, fd)
        self.relay.close()
        if self.launched and self.status is not None:
            exit_ = records.exit_from_status(self.job_id, self.status, self.ended_at_ns)
            if self.job_id in launcher.fenced:
                launcher.fenced.discard(self.job_id)
                exit_ = dataclasses.replace(exit_, fenced=True)
            # The daemon hears of the exit below; the file only serves a daemon
            # that was away. Without room for it the launcher must go on.
            with contextlib.suppress(OSError):
                records.write_exit(self.spec.job_dir, exit_)
            records.drop_running(launcher.state_dir, self.job_id)
            launcher.broadcast({"event": "exit", **exit_.__dict__})
        launcher.forget(self)


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])
