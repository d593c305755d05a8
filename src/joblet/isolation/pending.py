"""Signals held back until a job's init can pass them on.

Two races lose a signal sent to a job that has just started:

- The kernel drops a signal sent from an ancestor pid namespace to that
  namespace's init while the init neither blocks nor handles it
  (pid_namespaces(7); SIGNAL_UNKILLABLE in kernel/signal.c): tini's state in
  its first moments after exec.
- tini (with -g) passes a signal on to its child's process group; until the
  child has made that group (setpgid(0, 0) right after fork) the kill fails
  with ESRCH and tini drops the signal.

So the launcher (isolation/signals.py) keeps such a signal here and looks at
the init and its child in /proc from its event loop, soon at first and then
less often, until the init can pass it on or has ended. Pure: the caller
reads /proc, sends the signal and answers whoever asked.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Waiter = TypeVar("Waiter")

FIRST_LOOK_S = 0.001
MAX_LOOK_S = 0.02
SIGTTOU_BIT = 1 << (signal.SIGTTOU - 1)
ALWAYS_DELIVERED = (signal.SIGKILL, signal.SIGSTOP)  # even to a namespace's init


def parse_signal_masks(status_text: str) -> tuple[int, int]:
    """(SigBlk, SigIgn) of /proc/<pid>/status (0 for one that is absent)."""
    masks = {"SigBlk": 0, "SigIgn": 0}
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key in masks:
            masks[key] = int(value.split()[0], 16)
    return masks["SigBlk"], masks["SigIgn"]


def init_takes(status_text: str, signum: int) -> bool:
    """Whether tini, with this /proc status, would get `signum` at all.

    tini blocks every signal it passes on (sigprocmask), then ignores SIGTTIN
    and SIGTTOU, and waits in sigtimedwait(2). While it waits, the kernel
    shows the waited signals as unblocked (SigBlk is the mask minus the waited
    set; the real mask is kept aside and still queues them), so SigBlk alone
    says "not yet" of a tini that is ready: an ignored SIGTTOU, which the job's
    init resets to the default before exec, tells that tini got that far.
    """
    if signum in ALWAYS_DELIVERED:
        return True
    blocked, ignored = parse_signal_masks(status_text)
    return bool(blocked >> (signum - 1) & 1) or bool(ignored & SIGTTOU_BIT)


def leads_own_group(stat_text: str) -> bool:
    """Whether the process of this /proc/<pid>/stat leads its process group."""
    pid = int(stat_text.split(maxsplit=1)[0])
    # The comm field may hold spaces and parentheses: count after its last ')'.
    pgrp = int(stat_text[stat_text.rindex(")") + 2 :].split()[2])
    return pgrp == pid


def init_passes_on(init_status: str, child_stats: Sequence[str] | None, signum: int) -> bool:
    """Whether a signal sent now to tini (its /proc status, and the /proc stat
    of each of its children, None when the kernel does not list them) reaches
    the job's command."""
    if signum in ALWAYS_DELIVERED:
        return True
    if not init_takes(init_status, signum):
        return False
    return child_stats is None or any(leads_own_group(s) for s in child_stats)


@dataclass
class _Held(Generic[Waiter]):
    signals: list[tuple[int, Waiter]]
    look_at: float  # when to look at the init again
    step: float = FIRST_LOOK_S


@dataclass
class PendingSignals(Generic[Waiter]):
    """Per job, the signals waiting for its init, each with who asked."""

    _held: dict[str, _Held[Waiter]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self._held)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._held

    def add(self, job_id: str, signum: int, waiter: Waiter, now: float) -> None:
        held = self._held.get(job_id)
        if held is None:
            self._held[job_id] = _Held([(signum, waiter)], now + FIRST_LOOK_S)
        else:
            held.signals.append((signum, waiter))

    def due(self, now: float) -> list[str]:
        """The jobs whose init should be looked at now."""
        return [job_id for job_id, held in self._held.items() if held.look_at <= now]

    def signals(self, job_id: str) -> list[int]:
        held = self._held.get(job_id)
        return [signum for signum, _ in held.signals] if held else []

    def not_yet(self, job_id: str, now: float) -> None:
        """The init cannot take them yet: look again later, backing off."""
        held = self._held[job_id]
        held.step = min(held.step * 2, MAX_LOOK_S)
        held.look_at = now + held.step

    def take(self, job_id: str) -> list[tuple[int, Waiter]]:
        """Stop holding the job's signals: to send them, or because it ended."""
        held = self._held.pop(job_id, None)
        return held.signals if held else []

    def next_deadline(self) -> float | None:
        return min((held.look_at for held in self._held.values()), default=None)
