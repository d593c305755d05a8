"""The launcher ("zygote"): a single-threaded, pre-started process that forks jobs.

    python -m joblet.isolation.launcher --socket PATH --state-dir DIR [--idle-exit S]

The daemon starts it in a session of its own, so killing the daemon (or its
process group) leaves the launcher and every job running. The launcher is a
child subreaper: each job's init is reparented to it and reaped here, and it
copies the jobs' output into their log files. A launcher restarted while jobs
run cannot reap them (they were reparented elsewhere): it reports them in
"list" and, when their pid disappears, writes their exit.json with lost=true.

It exits when asked to ("exit": a clean daemon stop that stopped its jobs) as
soon as no job is left, or once it has had no job and no client for
`--idle-exit` seconds (its daemon died, or stopped cleanly leaving its jobs
here with "detach", and has not come back). How each job ended is in its exit.json
either way, for the next daemon to read.

After answering a launch it clones the init of the next one like it ahead of
time (see spares), so that a launch mostly sends the job's own part to it.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import gc
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from joblet.isolation import dispatch, libc, records, spares, userns
from joblet.isolation.jobproc import JobProc
from joblet.isolation.lifetime import Lifetime
from joblet.isolation.prepare import HostFacts, InitKey, load_host_facts, plan_launch
from joblet.isolation.signals import InitSignals
from joblet.isolation.spec import JobExit, LaunchSpec
from joblet.isolation.wire import Connection

Handler = Callable[[], None]
LOST_CHECK_S = 1.0
IDLE_EXIT_S = 60.0
SPARE_REAP_S = 1.0
ADOPTED_KILL_WAIT_S = 2.0  # for an earlier run's processes to go (see _end_adopted)


# A spare is cloned once the launcher saw no event for SPARE_IDLE_S, or at the
# latest SPARE_WAIT_MAX_S after it was wanted (a chatty job keeps it busy).
SPARE_IDLE_S = 0.002
SPARE_WAIT_MAX_S = 0.05


class Launcher:
    def __init__(
        self, socket_path: str, state_dir: str, host: HostFacts, idle_exit_s: float = IDLE_EXIT_S
    ) -> None:
        self.socket_path = socket_path
        self.state_dir = state_dir
        self.host = host
        self.sel = selectors.DefaultSelector()
        self.clients: set[Connection] = set()
        self.jobs: dict[str, JobProc] = {}
        self.by_pid: dict[int, JobProc] = {}
        self.early: dict[int, int] = {}  # statuses reaped before the pid was known
        self.adopted: dict[str, records.RunningRecord] = {}
        self.spares = spares.Spares()
        self.signals: InitSignals[tuple[Connection, Any]] = InitSignals(
            self._answer_signal, host.procfs
        )
        self._spare_wanted: tuple[InitKey, float] | None = None  # key, latest clone time
        # The daemon's fence, kept here too (see set_fence): jobs to kill
        # unless their deadline (monotonic seconds) is renewed first.
        self._fence_jobs: frozenset[str] = frozenset()
        self._fence_until = 0.0
        self.fenced: set[str] = set()  # killed by it: their exits say so
        self._next_lost_check = 0.0
        self.lifetime = Lifetime(idle_exit_s, time.monotonic())
        self.listener = _listen(socket_path)
        self._watch(self.listener.fileno(), self._accept)
        self._wakeup_r = self._install_sigchld()

    # --- plumbing ---------------------------------------------------------

    def _watch(self, fd: int, handler: Handler, events: int = selectors.EVENT_READ) -> None:
        self.sel.register(fd, events, handler)

    def unwatch(self, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(fd)

    def _install_sigchld(self) -> int:
        read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(write_end)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self._watch(read_end, self._on_sigchld)
        return read_end

    def serve_forever(self) -> None:
        """Serve until its lifetime ends (see lifetime), then clean up."""
        self._adopt_previous()
        self._reap()  # children may have ended before the handler was set
        while not self.lifetime.should_exit(self.has_jobs(), bool(self.clients), time.monotonic()):
            events = self.sel.select(self._timeout())
            dispatch.run_ready(self.sel, events)
            self._tick(idle=not events)
        self._close()

    def has_jobs(self) -> bool:
        return bool(self.jobs or self.adopted)

    def _close(self) -> None:
        """Stop listening first (a daemon starting now spawns a new launcher),
        then let the spares go and reap them, so no process of ours is left."""
        # Unlinked before the listener closes: a launcher started from now on
        # binds a fresh path, which this one can then no longer remove.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        self.unwatch(self.listener.fileno())
        self.listener.close()
        records.drop_pid_file(self.state_dir, os.getpid())
        self.spares.discard_all()
        deadline = time.monotonic() + SPARE_REAP_S
        while self.spares.pending() and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.01)
        # Closed last: a client that sees end of file knows all of it is done.
        for conn in list(self.clients):
            conn.flush()  # the answer to "exit", if it is still queued
            self.drop(conn)

    def _timeout(self) -> float | None:
        deadlines = [job.deadline for job in self.jobs.values() if job.deadline]
        if self.adopted:
            deadlines.append(self._next_lost_check)
        spare_deadline = self.spares.next_deadline()
        if spare_deadline is not None:
            deadlines.append(spare_deadline)
        if self._spare_wanted is not None:
            deadlines.append(min(self._spare_wanted[1], time.monotonic() + SPARE_IDLE_S))
        if self._fence_jobs:
            deadlines.append(self._fence_until)
        signal_deadline = self.signals.next_deadline()
        if signal_deadline is not None:
            deadlines.append(signal_deadline)
        exit_at = self.lifetime.deadline(self.has_jobs(), bool(self.clients))
        if exit_at is not None:
            deadlines.append(exit_at)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _tick(self, idle: bool) -> None:
        if self.signals:
            self.signals.deliver_due(self._live_pid)
        for job in list(self.jobs.values()):
            job.maybe_finish(self)
        self.spares.expire()
        wanted = self._spare_wanted
        if wanted is not None and (idle or time.monotonic() >= wanted[1]):
            self._spare_wanted = None
            self._clone_spare(wanted[0])
        if self.adopted and time.monotonic() >= self._next_lost_check:
            self._check_adopted()
        if self._fence_jobs and time.monotonic() >= self._fence_until:
            self._fire_fence()

    def set_fence(self, until: float, job_ids: list[str]) -> None:
        """The daemon's placement fence, kept by the launcher as well: the
        daemon confirmed its cluster lease, and the jobs that may run again
        elsewhere when it lapses are to be killed at `until` (CLOCK_MONOTONIC
        seconds) unless it confirms again first. A daemon that hangs
        (SIGSTOP) or dies cannot kill them itself; this process still can, so
        their retry on another node never overlaps them. Each call replaces
        the last; no jobs disarms it."""
        self._fence_jobs = frozenset(job_ids)
        self._fence_until = until

    def _fire_fence(self) -> None:
        running = self.running()
        killed = sorted(job_id for job_id in self._fence_jobs if job_id in running)
        self._fence_jobs = frozenset()
        for job_id in killed:
            self.fenced.add(job_id)
            with contextlib.suppress(ProcessLookupError):
                os.kill(running[job_id], signal.SIGKILL)  # its pid namespace goes with it
        if killed:
            print(
                f"launcher: the daemon did not confirm its cluster lease in time: killed"
                f" {len(killed)} job(s) that may run again elsewhere: {', '.join(killed)}",
                file=sys.stderr,
                flush=True,
            )

    # --- clients ------------------------------------------------------------

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn = Connection(sock)
        self.clients.add(conn)
        self.lifetime.client_came()
        self._watch(conn.fileno(), lambda: self._on_client(conn))

    def _on_client(self, conn: Connection) -> None:
        requests = conn.receive()
        if requests is None:
            self.drop(conn)
            return
        for request in requests:
            self._handle(conn, request)

    def drop(self, conn: Connection) -> None:
        if not conn.closed:
            self.clients.discard(conn)
            self.unwatch(conn.fileno())
            conn.close()
            self.lifetime.quiet_from(time.monotonic())

    def reply(self, conn: Connection, request_id: Any, body: dict[str, Any]) -> None:
        if conn.closed:
            return
        if request_id is not None:
            body = {"id": request_id, **body}
        if not conn.queue(body):
            self.drop(conn)
        elif conn.outbuf:
            self.sel.modify(
                conn.fileno(),
                selectors.EVENT_READ | selectors.EVENT_WRITE,
                lambda: self._on_client_io(conn),
            )

    def _on_client_io(self, conn: Connection) -> None:
        if not conn.flush():
            self.drop(conn)
            return
        if not conn.outbuf:
            self.sel.modify(conn.fileno(), selectors.EVENT_READ, lambda: self._on_client(conn))
        self._on_client(conn)

    def broadcast(self, message: dict[str, Any]) -> None:
        for conn in list(self.clients):
            self.reply(conn, None, message)

    def _handle(self, conn: Connection, request: dict[str, Any]) -> None:
        rid = request.get("id")
        op = request.get("op")
        try:
            if op == "launch":
                self._launch(conn, rid, _parse_spec(request["spec"]))
            elif op == "ping":
                body = {"ok": True, "pid": os.getpid(), "user_namespace": self.host.userns_note}
                self.reply(conn, rid, body)
            elif op == "list":
                adopted = sorted(self.adopted_ids())
                self.reply(conn, rid, {"ok": True, "jobs": self.running(), "adopted": adopted})
            elif op == "signal":
                self._signal(conn, rid, str(request["job_id"]), int(request["signal"]))
            elif op == "exit":
                self.lifetime.ask_exit()
                self.reply(conn, rid, {"ok": True, "jobs": sorted(self.running())})
            elif op == "detach":
                self._detach(conn, rid)
            elif op == "fence":
                self.set_fence(float(request["until"]), [str(j) for j in request["jobs"]])
                self.reply(conn, rid, {"ok": True})
            else:
                self.reply(conn, rid, {"ok": False, "error": f"unknown op: {op!r}"})
        except (KeyError, TypeError, ValueError, OSError) as exc:
            self.reply(conn, rid, {"ok": False, "error": f"{op}: {exc}"})

    def _detach(self, conn: Connection, rid: Any) -> None:
        """The daemon stops cleanly and leaves its running jobs here (live
        restore): they keep running and are reaped here; the next daemon
        connects and re-attaches them. No launch comes before then, so the
        spares go now; the idle exit counts once the daemon has gone."""
        self.lifetime.client_came()  # an exit asked before is void: jobs stay
        self.spares.discard_all()
        jobs = sorted(self.running())
        print(
            f"launcher: the daemon stopped and left {len(jobs)} running job(s) here",
            file=sys.stderr,
            flush=True,
        )
        self.reply(conn, rid, {"ok": True, "jobs": jobs})

    def running(self) -> dict[str, int]:
        jobs = {j.job_id: j.pid for j in self.jobs.values() if j.launched and j.status is None}
        jobs.update({rec.job_id: rec.pid for rec in self.adopted.values()})
        return jobs

    def adopted_ids(self) -> set[str]:
        """Jobs a previous launcher started: alive, but their output is lost."""
        return {rec.job_id for rec in self.adopted.values()}

    def _signal(self, conn: Connection, rid: Any, job_id: str, signum: int) -> None:
        """Signal the job's init now, or once it can pass the signal on (see
        signals); the answer says whether it was sent ("delivered": false
        when the init ended first: its exit is reported as for any job)."""
        pid = self.running().get(job_id)
        if pid is None:
            raise KeyError(f"no running job {job_id}")
        signum = signal.Signals(signum)  # ValueError for a number that is no signal
        self.signals.send(job_id, pid, signum, (conn, rid), fresh=job_id in self.jobs)

    def _answer_signal(self, waiter: tuple[Connection, Any], delivered: bool) -> None:
        conn, rid = waiter
        self.reply(conn, rid, {"ok": True, "delivered": delivered})

    def _live_pid(self, job_id: str) -> int:
        job = self.jobs.get(job_id)
        return job.pid if job is not None and job.status is None else 0

    # --- launching and reaping ---------------------------------------------------

    def _launch(self, conn: Connection, rid: Any, spec: LaunchSpec) -> None:
        if spec.job_id in self.jobs:
            raise ValueError(f"job {spec.job_id} is already running")
        if spec.job_id in self.adopted:
            self._end_adopted(spec.job_id)
        plan = plan_launch(spec, self.host)
        if self.host.userns_fd >= 0:
            # The job's root (host uid ids.base) must own its workspace and the
            # uploads the daemon wrote there as host root.
            ids = self.host.ids
            userns.chown_tree(spec.workspace, ids.host_id(spec.uid), ids.host_id(spec.gid))
        # A spare's mount namespace is a copy of the host's from when it was made:
        # a volume mounted on the host since then would be an empty directory in
        # it, so a job with volumes gets an init cloned now.
        init = None if spec.volume_mounts else self.spares.take(plan.key)
        if init is None:
            init = spares.clone_init(plan.key, self.host)
        else:
            _set_priority(init.pid, idle=False)  # its job's part runs at full priority
        try:
            job = JobProc(spec, init.ends, conn, rid, plan.key)
        except BaseException:
            self.spares.drop(init)
            raise
        self.jobs[spec.job_id] = job
        init.send(plan.order)
        job.watch(self)
        job.started(self, init.pid)

    def make_spare(self, key: InitKey) -> None:
        """Clone the init for the next launch like the last one (see spares), once
        the launcher has been idle for SPARE_IDLE_S: the job just launched starts
        first, and its output is relayed without waiting for a clone."""
        if key not in self.spares.ready:
            self._spare_wanted = (key, time.monotonic() + SPARE_WAIT_MAX_S)

    def _clone_spare(self, key: InitKey) -> None:
        if key in self.spares.ready:
            return
        # On failure the next launch clones its own init, and reports why it cannot.
        with contextlib.suppress(OSError):
            spare = spares.clone_init(key, self.host)
            self.spares.add(spare)
            # Built while the job just launched starts: at idle priority it
            # takes only CPU time that job (and its readers) leave unused.
            _set_priority(spare.pid, idle=True)

    def learned_pid(self, job: JobProc) -> None:
        self.by_pid[job.pid] = job
        status = self.early.pop(job.pid, None)
        if status is not None:
            job.exited(status)

    def _on_sigchld(self) -> None:
        try:
            while os.read(self._wakeup_r, 4096):
                pass
        except BlockingIOError:
            pass
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spares.reaped(pid, status):
                continue
            if pid in self.by_pid:
                self.by_pid.pop(pid).exited(status)
            else:
                self.early[pid] = status

    def forget(self, job: JobProc) -> None:
        self.signals.drop(job.job_id)
        self.jobs.pop(job.job_id, None)
        self.lifetime.quiet_from(time.monotonic())

    # --- jobs of a previous launcher ---------------------------------------------

    def _adopt_previous(self) -> None:
        for rec in records.load_running(self.state_dir):
            self.adopted[rec.job_id] = rec
        self._check_adopted()

    def _end_adopted(self, job_id: str) -> None:
        """A job a previous launcher started, launched again: the daemon
        decided its old run is over (it restarted and found the run lost, or
        the cluster moved the job on), so the old copy must not run beside
        the new one: it is killed, and forgotten without an exit (its end was
        decided already; an exit now would end the new run)."""
        rec = self.adopted[job_id]
        procfs = self.host.procfs
        if records.read_start_ticks(rec.pid, procfs) == rec.start_ticks:
            with contextlib.suppress(ProcessLookupError):
                os.kill(rec.pid, signal.SIGKILL)  # its pid namespace goes with it
            deadline = time.monotonic() + ADOPTED_KILL_WAIT_S
            while records.read_start_ticks(rec.pid, procfs) == rec.start_ticks:
                if time.monotonic() > deadline:
                    raise ValueError(f"job {job_id} is already running (an earlier run lives on)")
                time.sleep(0.005)
        del self.adopted[job_id]
        records.drop_running(self.state_dir, job_id)
        print(f"launcher: job {job_id} launched again: its earlier run (pid {rec.pid}) ended",
              file=sys.stderr, flush=True)  # fmt: skip

    def _check_adopted(self) -> None:
        self._next_lost_check = time.monotonic() + LOST_CHECK_S
        for rec in list(self.adopted.values()):
            if records.read_start_ticks(rec.pid, self.host.procfs) == rec.start_ticks:
                continue
            del self.adopted[rec.job_id]
            self.lifetime.quiet_from(time.monotonic())
            fenced = rec.job_id in self.fenced
            self.fenced.discard(rec.job_id)
            lost = JobExit(rec.job_id, -1, 0, time.time_ns(), lost=True, fenced=fenced)
            # The job's directory may be gone (the job deleted) or full.
            if not os.path.exists(os.path.join(rec.job_dir, records.EXIT_FILE)):
                with contextlib.suppress(OSError):
                    records.write_exit(rec.job_dir, lost)
            records.drop_running(self.state_dir, rec.job_id)
            self.broadcast({"event": "exit", **lost.__dict__})


def _parse_spec(raw: object) -> LaunchSpec:
    if isinstance(raw, dict):
        return LaunchSpec.from_dict(raw)
    return LaunchSpec.from_json(raw if isinstance(raw, str) else json.dumps(raw))


def _listen(socket_path: str) -> socket.socket:
    if os.path.exists(socket_path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(socket_path)
        except OSError:
            os.unlink(socket_path)  # stale: nobody listens
        else:
            raise RuntimeError(f"a launcher already listens on {socket_path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket is created 0600: no window with wider modes
    try:
        sock.bind(socket_path)
    finally:
        os.umask(old)
    sock.listen(64)
    sock.setblocking(False)
    return sock


def _ensure_std_fds() -> None:
    """Keep fds 0-2 taken, so no pipe of a job lands on them."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open("/dev/null", os.O_RDWR)


def serve(
    socket_path: str, state_dir: str, idle_exit_s: float = IDLE_EXIT_S, userns_mode: str = "off"
) -> None:
    """Run the launcher until it exits (see Launcher.serve_forever) or is killed."""
    _ensure_std_fds()
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    libc.set_child_subreaper()
    # Inherited by every forked child: nobody can ptrace or read the memory of
    # a job's setup process; exec of the job's init makes it dumpable again.
    libc.set_dumpable(False)
    job_root = os.path.join(state_dir, "root")
    os.makedirs(job_root, mode=0o700, exist_ok=True)
    userns_fd, userns_note = _user_namespace(userns_mode)
    host = _load_host(job_root, userns_fd)
    host.userns_note = userns_note
    launcher = Launcher(socket_path, state_dir, host, idle_exit_s)
    # Objects made so far live forever: keep the collector away from their
    # pages so forked children share them instead of copying them.
    gc.freeze()
    launcher.serve_forever()


def _user_namespace(mode: str, procfs: str = "/proc") -> tuple[int, str]:
    """The jobs' user namespace (an fd, or -1 for none) and what to tell the
    daemon about it. Refused by the kernel: with "on", one line on stderr and
    exit 1; with "auto", one line and jobs run in the host's user namespace."""
    if mode == "off":
        return -1, "off"
    ids = userns.IdMap()
    try:
        fd = userns.create(ids, procfs)
    except (userns.UserNamespaceUnavailable, OSError) as exc:
        if mode == "on":
            raise SystemExit(f"joblet-launcher: cannot start: user namespaces: {exc}") from exc
        note = f"unavailable ({exc}); jobs run in the host's user namespace"
        print(f"joblet-launcher: user namespaces {note}", file=sys.stderr, flush=True)
        return -1, note
    return fd, f"on: job ids 0-{ids.count - 1} are host ids {ids.base}-{ids.base + ids.count - 1}"


def _load_host(job_root: str, userns_fd: int = -1) -> HostFacts:
    """The host's facts, or one line on stderr (the launcher's log) and exit 1:
    no tini, or no executable sealed copy of it (vm.memfd_noexec=2)."""
    try:
        return load_host_facts(job_root, userns_fd=userns_fd)
    except OSError as exc:
        raise SystemExit(f"joblet-launcher: cannot start: {exc}") from exc


def _set_priority(pid: int, *, idle: bool) -> None:
    policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
    # A spare that already died is reaped and reported by the launch itself.
    with contextlib.suppress(OSError):
        os.sched_setscheduler(pid, policy, os.sched_param(0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="joblet-launcher")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=IDLE_EXIT_S,
        metavar="S",
        help="exit after S seconds with no job and no client (0: never)",
    )
    parser.add_argument(
        "--user-namespace",
        choices=userns.MODES,
        default="off",
        help="run jobs in a user namespace (auto: where the kernel allows)",
    )
    args = parser.parse_args(argv)
    if args.idle_exit < 0:
        parser.error("--idle-exit must be >= 0")
    faulthandler.enable()  # a crash in a C extension leaves its stacks in the log
    serve(args.socket, args.state_dir, args.idle_exit, args.user_namespace)


if __name__ == "__main__":
    main()
