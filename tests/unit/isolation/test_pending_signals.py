"""Signals held until a job's init can take them: when tini counts as ready
(on synthetic /proc text and on a real tini), and the bookkeeping."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.isolation import records
from joblet.isolation.pending import (
    FIRST_LOOK_S,
    MAX_LOOK_S,
    PendingSignals,
    init_passes_on,
    init_takes,
    leads_own_group,
    parse_signal_masks,
)
from joblet.isolation.signals import InitSignals

# /proc/<pid>/status of tini: just exec'd, with its mask set (all but the
# signals it leaves to the kernel), and waiting in sigtimedwait(2).
FRESH = "Name:\ttini\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
MASKED = "Name:\ttini\nSigBlk:\tfffffffe3fcbfa07\nSigIgn:\t0000000000000000\n"
WAITING = "Name:\ttini\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000300000\n"
# /proc/<pid>/stat of tini's child: just forked (tini's group), then in its own.
FORKED = "52 (tini) S 51 51 51 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 9 1 0"
LEADER = "52 (a) b (c)) S 51 52 52 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 9 1 0"


def test_masks_are_read_from_proc_status() -> None:
    assert parse_signal_masks(MASKED) == (0xFFFFFFFE3FCBFA07, 0)
    assert parse_signal_masks(WAITING) == (0, 0x300000)
    assert parse_signal_masks("Name:\tx\n") == (0, 0)


def test_a_fresh_init_takes_only_sigkill_and_sigstop() -> None:
    assert not init_takes(FRESH, signal.SIGTERM)
    assert not init_takes(FRESH, signal.SIGINT)
    assert init_takes(FRESH, signal.SIGKILL)
    assert init_takes(FRESH, signal.SIGSTOP)


def test_an_init_that_blocks_or_waits_takes_signals() -> None:
    assert init_takes(MASKED, signal.SIGTERM)
    assert init_takes(WAITING, signal.SIGTERM)
    assert init_takes(WAITING, signal.SIGUSR1)


def test_the_child_leads_its_group_once_it_made_it() -> None:
    assert not leads_own_group(FORKED)
    assert leads_own_group(LEADER)  # a comm with spaces and parentheses


def test_a_signal_is_passed_on_once_tini_waits_and_its_child_has_its_group() -> None:
    assert not init_passes_on(FRESH, [], signal.SIGTERM)
    assert not init_passes_on(MASKED, [], signal.SIGTERM)  # not forked yet
    assert not init_passes_on(MASKED, [FORKED], signal.SIGTERM)  # kill(-child) fails
    assert not init_passes_on(FRESH, [LEADER], signal.SIGTERM)
    assert init_passes_on(MASKED, [LEADER], signal.SIGTERM)
    assert init_passes_on(WAITING, [FORKED, LEADER], signal.SIGTERM)
    assert init_passes_on(FRESH, [], signal.SIGKILL)
    # A kernel that does not list children: the mask is all there is to go by.
    assert init_passes_on(WAITING, None, signal.SIGTERM)
    assert not init_passes_on(FRESH, None, signal.SIGTERM)


def test_signals_wait_in_order_per_job() -> None:
    pending: PendingSignals[str] = PendingSignals()
    assert not pending and pending.next_deadline() is None
    pending.add("a", signal.SIGTERM, "first", now=10.0)
    pending.add("a", signal.SIGUSR1, "second", now=10.5)
    pending.add("b", signal.SIGINT, "other", now=11.0)
    assert "a" in pending and "c" not in pending
    assert pending.signals("a") == [signal.SIGTERM, signal.SIGUSR1]
    assert pending.next_deadline() == 10.0 + FIRST_LOOK_S
    assert pending.due(10.0) == []
    assert pending.due(11.0 + FIRST_LOOK_S) == ["a", "b"]
    assert pending.take("a") == [(signal.SIGTERM, "first"), (signal.SIGUSR1, "second")]
    assert pending.take("a") == []
    assert pending.due(100.0) == ["b"]
    assert pending.take("b") == [(signal.SIGINT, "other")]
    assert not pending


def test_an_init_not_ready_is_looked_at_less_and_less_often() -> None:
    pending: PendingSignals[None] = PendingSignals()
    pending.add("a", signal.SIGTERM, None, now=0.0)
    steps = []
    for now in range(1, 11):
        pending.not_yet("a", float(now))
        deadline = pending.next_deadline()
        assert deadline is not None and pending.due(float(now)) == []
        steps.append(round(deadline - now, 6))
    assert steps[0] == 2 * FIRST_LOOK_S
    assert steps == sorted(steps)
    assert steps[-1] == MAX_LOOK_S


@pytest.mark.skipif(shutil.which("tini") is None, reason="tini is not installed")
def test_a_real_tini_waiting_for_signals_counts_as_ready() -> None:
    """What the kernel shows of tini on this host: while it waits in
    sigtimedwait its SigBlk is empty, yet it takes SIGTERM and passes it on."""
    env = {**os.environ, "TINI_SUBREAPER": "1"}  # no warning for not being PID 1
    tini = subprocess.Popen(["tini", "-g", "--", "sleep", "30"], env=env)
    try:
        deadline = time.monotonic() + 10
        while True:  # until its child has its group and tini waits for signals
            state = records.read_init(tini.pid)
            assert state is not None
            wchan = Path(f"/proc/{tini.pid}/wchan").read_text()
            if "sigtimedwait" in wchan and init_passes_on(*state, signal.SIGTERM):
                break
            assert time.monotonic() < deadline, f"tini did not get ready ({wchan}, {state})"
            time.sleep(0.01)
        status = state[0]
        assert not parse_signal_masks(status)[0] >> (signal.SIGTERM - 1) & 1
        assert init_takes(status, signal.SIGTERM)
        tini.send_signal(signal.SIGTERM)
        assert tini.wait(10) == 128 + signal.SIGTERM
    finally:
        tini.kill()
        tini.wait()


def test_the_init_is_read_from_a_procfs_tree(tmp_path: Path) -> None:
    (tmp_path / "42" / "task" / "42").mkdir(parents=True)
    (tmp_path / "42" / "status").write_text(WAITING)
    assert records.read_init(42, str(tmp_path)) == (WAITING, None)  # no children file
    (tmp_path / "42" / "task" / "42" / "children").write_text("52 53 ")
    (tmp_path / "52").mkdir()
    (tmp_path / "52" / "stat").write_text(LEADER)  # 53 ended in between: skipped
    assert records.read_init(42, str(tmp_path)) == (WAITING, [LEADER])
    assert records.read_init(7, str(tmp_path)) is None


class _Init:
    """A stand-in init: a real child process (what the signals hit) whose
    /proc entries a fake procfs tree shows as tini's at a chosen moment."""

    def __init__(self, procfs: Path) -> None:
        self.proc = subprocess.Popen(["sleep", "30"])
        self.dir = procfs / str(self.proc.pid)
        (self.dir / "task" / str(self.proc.pid)).mkdir(parents=True)
        self.show(FRESH)
        self.answers: list[tuple[str, bool]] = []
        self.signals: InitSignals[str] = InitSignals(
            lambda who, sent: self.answers.append((who, sent)), str(procfs)
        )

    def show(self, status: str, *child_stats: str) -> None:
        (self.dir / "status").write_text(status)
        children = self.dir / "task" / str(self.proc.pid) / "children"
        children.write_text(" ".join(s.split()[0] for s in child_stats))
        for stat in child_stats:
            child = self.dir.parent / stat.split()[0]
            child.mkdir(exist_ok=True)
            (child / "stat").write_text(stat)

    def deliver_for(self, seconds: float, pid: int) -> None:
        """Run the launcher's part of its loop for a while."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.signals:
            self.signals.deliver_due(lambda _: pid)
            time.sleep(FIRST_LOOK_S)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def init(tmp_path: Path) -> Iterator[_Init]:
    stand_in = _Init(tmp_path)
    yield stand_in
    stand_in.close()


def test_a_signal_is_held_until_the_init_can_pass_it_on(init: _Init) -> None:
    pid = init.proc.pid
    init.signals.send("job", pid, signal.SIGTERM, "stop", fresh=True)
    init.signals.send("job", pid, signal.SIGCONT, "cont", fresh=True)
    init.deliver_for(0.05, pid)
    assert init.answers == [] and init.proc.poll() is None
    init.show(WAITING, FORKED)  # the child has not made its group yet
    init.deliver_for(0.05, pid)
    assert init.answers == [] and init.proc.poll() is None
    init.show(WAITING, LEADER)
    init.deliver_for(5, pid)
    assert init.answers == [("stop", True), ("cont", True)]
    assert init.proc.wait(5) == -signal.SIGTERM


def test_a_held_signal_is_answered_when_the_init_ends_first(init: _Init) -> None:
    init.signals.send("job", init.proc.pid, signal.SIGTERM, "stop", fresh=True)
    init.deliver_for(0.01, init.proc.pid)
    init.deliver_for(5, 0)  # reaped: the launcher knows no live pid for it
    assert init.answers == [("stop", False)]
    init.signals.send("job", init.proc.pid, signal.SIGTERM, "again", fresh=True)
    init.signals.drop("job")  # the launcher forgets the job
    assert init.answers[-1] == ("again", False)
    assert not init.signals and init.proc.poll() is None


def test_sigkill_and_a_long_started_init_are_not_held(init: _Init) -> None:
    init.signals.send("old", init.proc.pid, signal.SIGCONT, "cont", fresh=False)
    assert init.answers == [("cont", True)]
    init.signals.send("job", init.proc.pid, signal.SIGKILL, "kill", fresh=True)
    assert init.answers[-1] == ("kill", True)
    assert init.proc.wait(5) == -signal.SIGKILL
