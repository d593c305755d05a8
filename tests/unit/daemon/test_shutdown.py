"""`joblet shutdown`'s logic with a fake daemon: what it asks, how it waits,
and its one-line refusals."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from joblet.config.model import RootLayout
from joblet.daemon import shutdown
from joblet.errors import FailedPrecondition, JobletError


class FakeDaemon:
    """Holds the root's lock until `stops_after` polls past its SIGTERM."""

    def __init__(self, layout: RootLayout, pid: int | None, stops_after: int | None) -> None:
        self.layout = layout
        self.pid = pid
        self.stops_after = stops_after
        self.signals: list[int] = []
        self.seen_request: bool | None = None
        self.polls = 0
        self.now = 0.0

    def holder(self, layout: RootLayout) -> int | None:
        assert layout == self.layout
        if self.signals:
            self.polls += 1
            if self.stops_after is not None and self.polls > self.stops_after:
                return None
        return self.pid

    def kill(self, pid: int, signum: int) -> None:
        assert pid == self.pid
        self.signals.append(signum)
        self.seen_request = shutdown.take_request(self.layout)

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def stop(self, stop_jobs: bool, timeout: float = 5.0) -> shutdown.Stopped:
        return shutdown.shutdown_daemon(
            self.layout, stop_jobs, timeout, holder=self.holder, kill=self.kill,
            is_gone=lambda pid: True, clock=lambda: self.now, sleep=self.sleep,
        )  # fmt: skip


@pytest.fixture
def layout(tmp_path: Path) -> RootLayout:
    layout = RootLayout(tmp_path)
    layout.run.mkdir(parents=True)
    return layout


def test_stop_jobs_reaches_the_daemon_with_its_sigterm(layout: RootLayout) -> None:
    daemon = FakeDaemon(layout, 4242, stops_after=3)
    stopped = daemon.stop(stop_jobs=True)
    assert daemon.signals == [signal.SIGTERM]
    assert daemon.seen_request is True
    assert stopped.pid == 4242 and stopped.seconds == pytest.approx(3 * shutdown.POLL_S)


def test_without_stop_jobs_a_stale_request_is_cleared_and_the_config_decides(
    layout: RootLayout,
) -> None:
    shutdown.write_request(layout, stop_jobs=True)  # left by a shutdown that never landed
    daemon = FakeDaemon(layout, 4242, stops_after=0)
    daemon.stop(stop_jobs=False)
    assert daemon.seen_request is None


def test_no_daemon_is_refused_and_nothing_is_written(layout: RootLayout) -> None:
    daemon = FakeDaemon(layout, None, stops_after=0)
    with pytest.raises(FailedPrecondition, match=f"no joblet daemon serves {layout.root}$"):
        daemon.stop(stop_jobs=True)
    assert daemon.signals == []
    assert not shutdown.request_path(layout).exists()


def test_a_lock_without_a_pid_is_refused(layout: RootLayout) -> None:
    with pytest.raises(JobletError, match="wrote no pid"):
        FakeDaemon(layout, 0, stops_after=0).stop(stop_jobs=False)


def test_a_daemon_that_does_not_exit_in_time_is_reported(layout: RootLayout) -> None:
    daemon = FakeDaemon(layout, 4242, stops_after=None)
    with pytest.raises(JobletError, match=r"\(pid 4242\) has not exited after 2s"):
        daemon.stop(stop_jobs=False, timeout=2.0)


def test_the_wait_lasts_until_the_process_has_exited(layout: RootLayout) -> None:
    daemon = FakeDaemon(layout, 4242, stops_after=0)
    exits = iter([False, False, True])
    stopped = shutdown.shutdown_daemon(
        layout, False, 5.0, holder=daemon.holder, kill=daemon.kill,
        is_gone=lambda pid: next(exits), clock=lambda: daemon.now, sleep=daemon.sleep,
    )  # fmt: skip
    assert stopped.seconds == pytest.approx(2 * shutdown.POLL_S)


def test_only_the_stop_jobs_word_is_a_request() -> None:
    assert shutdown.parse_request("stop-jobs\n") is True
    assert shutdown.parse_request("") is None
    assert shutdown.parse_request("stop-jobs please") is None


def test_a_zombie_or_missing_process_has_exited(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "stat").write_text("7 (joblet) S 1 7 7 0")
    (tmp_path / "8").mkdir()
    (tmp_path / "8" / "stat").write_text("8 (a (b) c) Z 1 8 8 0")
    assert not shutdown.exited(7, str(tmp_path))
    assert shutdown.exited(8, str(tmp_path))
    assert shutdown.exited(9, str(tmp_path))
