"""The launcher's signals to job inits: sent at once when the init can pass
them on, else held (see pending) and sent from the launcher's event loop once
it can. Nothing here blocks: the loop asks for `next_deadline` and calls
`deliver_due` when it comes."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import Generic

from joblet.isolation import records
from joblet.isolation.pending import PendingSignals, Waiter, init_passes_on

# Told whether the signal was sent (False: the init ended first).
Answer = Callable[[Waiter, bool], None]
# A job's init while it is alive and not reaped, else 0.
LivePid = Callable[[str], int]


class InitSignals(Generic[Waiter]):
    def __init__(self, answer: Answer[Waiter], procfs: str = "/proc") -> None:
        self._answer = answer
        self._procfs = procfs
        self._pending: PendingSignals[Waiter] = PendingSignals()

    def __bool__(self) -> bool:
        return bool(self._pending)

    def send(self, job_id: str, pid: int, signum: int, waiter: Waiter, *, fresh: bool) -> None:
        """Signal the init `pid` of `job_id` now, or hold the signal until it
        can pass it on. `fresh`: the init may still be starting (this launcher
        started it; a previous launcher's jobs are long past that)."""
        not_ready = fresh and self._ready(pid, [signum]) is False
        if signum != signal.SIGKILL and (job_id in self._pending or not_ready):
            # Before tini can pass it on, or behind signals held already.
            self._pending.add(job_id, signum, waiter, time.monotonic())
            return
        _kill(pid, signum)
        self._answer(waiter, True)

    def next_deadline(self) -> float | None:
        return self._pending.next_deadline()

    def deliver_due(self, live_pid: LivePid) -> None:
        now = time.monotonic()
        for job_id in self._pending.due(now):
            pid = live_pid(job_id)
            signals = self._pending.signals(job_id)
            ready = self._ready(pid, signals) if pid else None
            if ready is None:  # the init ended (reaped, or about to be)
                self.drop(job_id)
            elif ready:
                for signum in signals:
                    _kill(pid, signum)
                self._answer_all(job_id, delivered=True)
            else:
                self._pending.not_yet(job_id, now)

    def drop(self, job_id: str) -> None:
        """The job's init ended: whoever waits on its signals learns they were not sent."""
        self._answer_all(job_id, delivered=False)

    def _answer_all(self, job_id: str, *, delivered: bool) -> None:
        for _, waiter in self._pending.take(job_id):
            self._answer(waiter, delivered)

    def _ready(self, pid: int, signals: list[int]) -> bool | None:
        """Whether the init can pass every one of `signals` on; None when it is gone."""
        state = records.read_init(pid, self._procfs)
        if state is None:
            return None
        return all(init_passes_on(*state, signum) for signum in signals)


def _kill(pid: int, signum: int) -> None:
    # An init the launcher started is its child: until the launcher reaps it
    # the pid is its own (a zombie takes the signal silently).
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
