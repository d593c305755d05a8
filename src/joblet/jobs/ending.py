"""How a job ends: the launcher's report that its init exited, stopping it
(SIGTERM, a grace period, then kill), its timeout, and freeing what it held."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

from joblet.errors import IsolationError, JobletError, Unavailable
from joblet.isolation.spec import JobExit
from joblet.jobs import recovery, runtime_jobs
from joblet.jobs.model import Job, JobStatus
from joblet.jobs.ports import JobMetrics, JobNetworks, Launcher
from joblet.jobs.state_machine import Exited, Requeued
from joblet.jobs.table import JobRuntime, JobTable
from joblet.logs.service import JobLogs
from joblet.resources.interface import JobCgroup
from joblet.runtimes.seams import RuntimeResolver

log = logging.getLogger(__name__)
# Who stopped a placed job its node killed to fence itself (the daemon, or
# the launcher for a daemon that hung): the cluster may run it again.
FENCE_STOPPER = "placement fence"

KILL_SETTLE_S = 10.0
# The SYSTEM line a preempted job's log gets before it runs again.
REQUEUED_NOTE = b"preempted, requeued\n"


class JobEnding:
    """Settles jobs that end and frees their cgroup, network and slot.

    `on_slot_free` is called once a job has let go of its slot, so that the
    owner can start the next queued job.
    """

    def __init__(
        self,
        table: JobTable,
        logs: JobLogs,
        stop_grace_s: float,
        on_slot_free: Callable[[], None],
        *,
        metrics: JobMetrics | None = None,
        networks: JobNetworks | None = None,
        launcher: Launcher | None = None,
        runtimes: RuntimeResolver | None = None,
        max_requeues: int = 3,
        release_gpus: Callable[[str], None] | None = None,
    ) -> None:
        # GPUs go back only once the job's cgroup is empty (nothing of it
        # can still use them): the one owner of their release.
        self._release_gpus = release_gpus or (lambda job_id: None)
        self._max_requeues = max_requeues
        self._table = table
        self._logs = logs
        self._stop_grace_s = stop_grace_s
        self._on_slot_free = on_slot_free
        self._metrics = metrics
        self._networks = networks
        self._launcher = launcher
        self._runtimes = runtimes

    def on_exit(self, event: JobExit) -> None:
        """Called by the launcher client when a job's init has ended."""
        job_id = event.job_id
        rt = self._table.runtime.get(job_id)
        try:
            job = self._table.registry.get(job_id)
        except KeyError:
            return
        if rt is None or job.status.is_final or rt.launcher_lost:
            return
        if job.status is not JobStatus.RUNNING:
            # The exit can be read in the same batch as the launch reply, before
            # the start has recorded Started: keep it for the start to apply.
            rt.early_exit = event
            return
        oom = False
        if rt.cgroup is not None:
            try:
                oom = rt.cgroup.oom_killed()
            except OSError:
                log.exception("reading OOM state of job %s", job_id)
        if event.fenced and not rt.stopped_by:  # by the launcher, for a node that hung
            rt.stopped_by = FENCE_STOPPER
        requeue = job.spec.on_preempt == "requeue" and job.preemptions < self._max_requeues
        job = self._table.apply(job_id, _exited(event, rt, oom, job, requeue))
        log.info("job %s %s (%s)", job_id, job.status, job.end_reason)
        rt.exited.set()
        if job.requeue_due:
            self.requeue(job_id)
        else:
            self.release(job_id)

    def requeue(self, job_id: str, *, notify: bool = True) -> None:
        """A job stopped by a preemption waits again under its id, to run from
        scratch: its cgroup and network go, its log (with a note), uploads and
        runtime stay. `notify`: tell the owner a slot is free."""
        job = self._table.apply(job_id, Requeued(at=time.time()))
        log.info("job %s requeued (%s)", job_id, job.wait_reason)
        rt = self._table.runtime.get(job_id)
        cgroup = None
        if rt is not None:
            rt.cancel_timers()
            rt.close_stdin()
            cgroup, rt.cgroup = rt.cgroup, None
            # A fresh run: what the last one left must not end the next.
            rt.exited.set()
            rt.exited = asyncio.Event()
            rt.early_exit = None
            rt.stopped_by = ""
            rt.timed_out = False
            rt.settling = self._table.spawn_task(
                self._settle_requeue(job_id, cgroup, rt.cgroup_lock)
            )
        self._release_network(job_id)
        self._table.registry.enqueue(job_id)
        if notify:
            self._on_slot_free()

    async def _settle_requeue(
        self, job_id: str, cgroup: JobCgroup | None, lock: asyncio.Lock
    ) -> None:
        """Before the job runs again: its log marked, its old cgroup gone."""
        try:
            await self._logs.seal(job_id, REQUEUED_NOTE)
        except OSError as exc:
            log.warning("marking the log of job %s: %s", job_id, exc)
        if cgroup is not None:
            await self._remove_cgroup(job_id, cgroup, lock, True)
        else:
            self._release_gpus(job_id)

    def on_timeout(self, job_id: str) -> None:
        rt = self._table.runtime.get(job_id)
        if rt is None or rt.exited.is_set():
            return
        rt.timed_out = True
        self._table.spawn(self.terminate(job_id))

    async def terminate(
        self,
        job_id: str,
        signum: int = signal.SIGTERM,
        grace_s: float | None = None,
    ) -> None:
        """`signum` (SIGTERM) to every process of the job, a grace period (the
        node's unless `grace_s`), then kill what is left."""
        rt = self._table.runtime.get(job_id)
        if rt is None or rt.cgroup is None or rt.exited.is_set():
            return
        cgroup = rt.cgroup
        grace = self._stop_grace_s if grace_s is None else grace_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        init_pid = self._table.registry.get(job_id).pid
        for pid in _safe_pids(cgroup):
            if pid != init_pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
        try:
            await asyncio.wait_for(self._signal_init(job_id, init_pid, signum), grace)
            await asyncio.wait_for(rt.exited.wait(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            try:
                async with rt.cgroup_lock:
                    await asyncio.to_thread(cgroup.kill_all)
            except (OSError, JobletError) as exc:
                log.warning("killing job %s: %s", job_id, exc)
            # The launcher reports the exit once init is reaped; if it is gone
            # the supervisor-lost path settles the job instead.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.exited.wait(), KILL_SETTLE_S)

    async def send_signal(self, job_id: str, signum: int) -> None:
        """`signum` to the job's command and nothing more: it may go on running."""
        rt = self._table.runtime.get(job_id)
        if rt is None or rt.exited.is_set():
            return
        await self._signal_init(job_id, self._table.registry.get(job_id).pid, signum)

    async def _signal_init(self, job_id: str, init_pid: int, signum: int) -> None:
        """`signum` to the job's init through the launcher, which holds it until
        tini can take it and pass it on: sent from here before that, the kernel
        or tini drops it and the stop waits the whole grace period for nothing."""
        if self._launcher is not None:
            try:
                if not await self._launcher.signal(job_id, signum):
                    log.info("job %s ended before its init could take signal %d", job_id, signum)
                return
            except IsolationError:
                return  # the launcher has no such running job: its init is gone
            except Unavailable as exc:
                log.warning("signalling job %s through the launcher: %s", job_id, exc)
        if init_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init_pid, signum)

    async def settle_lost(self, job_id: str, reason: str) -> None:
        """The launcher that ran the job died: nothing can relay its output or
        report its exit any more. Kill everything in its cgroup, end its log
        with a note, and mark it FAILED with `reason`."""
        rt = self._table.runtime.get(job_id)
        if rt is None or rt.exited.is_set() or rt.launcher_lost:
            return
        rt.launcher_lost = True  # a late exit report (a lost one) must not win
        cgroup = rt.cgroup
        if cgroup is not None:
            try:
                async with rt.cgroup_lock:
                    await asyncio.to_thread(cgroup.kill_all)
            except (OSError, JobletError) as exc:
                log.warning("killing job %s: %s", job_id, exc)
        try:
            await self._logs.seal(job_id, recovery.LAUNCHER_LOST_NOTE)
        except OSError as exc:
            log.warning("ending the log of job %s: %s", job_id, exc)
        try:
            job = self._table.registry.get(job_id)
        except KeyError:
            return
        if job.status is not JobStatus.RUNNING or rt.exited.is_set():
            return
        lost = Exited(exit_code=-1, signal=0, at=time.time(), lost=reason)
        job = self._table.apply(job_id, lost)
        log.warning("job %s %s (%s)", job_id, job.status, job.end_reason)
        rt.exited.set()
        self.release(job_id)

    def release(self, job_id: str) -> None:
        """The job reached a final status: free its resources and its slot."""
        rt = self._table.runtime.get(job_id)
        if rt is not None:
            rt.cancel_timers()
            rt.close_stdin()
            rt.log_ready.set()
            if rt.cgroup is not None:
                cgroup, rt.cgroup = rt.cgroup, None
                rt.cleanup = self._table.spawn_task(
                    self._remove_cgroup(job_id, cgroup, rt.cgroup_lock, True)
                )
            else:
                self._release_gpus(job_id)
        else:
            self._release_gpus(job_id)
        self._logs.hub.finish(job_id)
        if rt is not None and rt.runtime_mount is not None:
            rt.runtime_mount = None
            runtime_jobs.release(self._runtimes, job_id)
        self._release_network(job_id)
        self._on_slot_free()

    def _release_network(self, job_id: str) -> None:
        if self._networks is not None:
            try:
                self._networks.release(job_id)
            except (OSError, JobletError):
                log.exception("releasing the network of job %s", job_id)

    async def _remove_cgroup(
        self, job_id: str, cgroup: JobCgroup, lock: asyncio.Lock, gpus: bool = False
    ) -> None:
        """Remove the job's cgroup; with `gpus`, then give back its GPUs,
        unless a process of the job survived (it could still use them)."""
        emptied = await self._clear_cgroup(job_id, cgroup, lock)
        if not gpus:
            return
        if emptied:
            self._release_gpus(job_id)
        else:
            log.error("job %s: its GPUs stay allocated, its cgroup could not be emptied", job_id)

    async def _clear_cgroup(self, job_id: str, cgroup: JobCgroup, lock: asyncio.Lock) -> bool:
        removed: list[bool] = []

        def remove() -> None:
            removed.append(_removed(cgroup))

        async with lock:
            if self._metrics is not None:
                # The final sample reads the cgroup's totals, so it comes before
                # removal, on the same worker thread. Whatever goes wrong with
                # it, the cgroup is still removed.
                try:
                    await self._metrics.finish_job(job_id, then=remove)
                except Exception:
                    log.exception("final metrics sample of job %s", job_id)
            if not removed:  # no metrics, or they failed before the removal
                await asyncio.to_thread(remove)
        return removed[0]


def _exited(event: JobExit, rt: JobRuntime, oom_killed: bool, job: Job, requeue: bool) -> Exited:
    """The state-machine event for an exit report, with why the job ended
    (the record says whether it was being stopped for another job)."""
    # tini reports a command killed by signal N as exit code 128 + N.
    signum = event.signal or (event.exit_code - 128 if 128 < event.exit_code < 160 else 0)
    return Exited(
        exit_code=event.exit_code,
        signal=signum,
        at=event.ended_at_ns / 1e9,
        stopped_by=rt.stopped_by,
        timed_out=rt.timed_out,
        oom_killed=oom_killed,
        lost=rt.lost_reason or (recovery.LOST_REASON if event.lost else ""),
        preempted_by=job.preempted_for,
        requeue=requeue,
    )


def _safe_pids(cgroup: JobCgroup) -> list[int]:
    # The job may end (and its cgroup go) while we look: that is not an error.
    try:
        return cgroup.pids()
    except (OSError, JobletError):
        return []


def _removed(cgroup: JobCgroup) -> bool:
    try:
        _kill_and_remove(cgroup)
    except (OSError, JobletError):
        log.exception("removing cgroup of job %s", cgroup.job_id)
        return False
    return True


def _kill_and_remove(cgroup: JobCgroup) -> None:
    # Most jobs leave nothing once their init has exited (its pid namespace
    # goes with it): their groups go by one rmdir each, without reading them.
    # (Off the event loop: an rmdir waits for the kernel's cgroup lock.)
    if cgroup.remove_if_empty():
        return
    cgroup.kill_all()
    cgroup.remove()
