"""When the launcher exits, on a clock the test moves."""

from __future__ import annotations

from joblet.isolation.lifetime import Lifetime


def test_jobs_always_keep_it() -> None:
    life = Lifetime(idle_exit_s=1.0, idle_since=0.0)
    life.ask_exit()
    assert life.deadline(has_jobs=True, has_clients=False) is None
    assert not life.should_exit(has_jobs=True, has_clients=False, now=1e9)


def test_asked_to_it_exits_as_soon_as_no_job_is_left_clients_or_not() -> None:
    life = Lifetime(idle_exit_s=0.0, idle_since=0.0)
    assert not life.should_exit(has_jobs=False, has_clients=True, now=100.0)
    life.ask_exit()
    assert life.should_exit(has_jobs=False, has_clients=True, now=0.0)


def test_a_new_client_cancels_an_asked_exit() -> None:
    life = Lifetime(idle_exit_s=0.0, idle_since=0.0)
    life.ask_exit()
    life.client_came()
    assert not life.should_exit(has_jobs=False, has_clients=True, now=100.0)


def test_idle_exit_counts_from_the_last_client_or_job_and_waits_for_clients() -> None:
    life = Lifetime(idle_exit_s=5.0, idle_since=0.0)
    assert life.deadline(has_jobs=False, has_clients=True) is None
    life.quiet_from(10.0)  # the daemon went away, or the last job ended
    assert life.deadline(has_jobs=False, has_clients=False) == 15.0
    assert not life.should_exit(has_jobs=False, has_clients=False, now=14.9)
    assert life.should_exit(has_jobs=False, has_clients=False, now=15.0)


def test_zero_means_it_never_exits_on_its_own() -> None:
    life = Lifetime(idle_exit_s=0.0, idle_since=0.0)
    assert life.deadline(has_jobs=False, has_clients=False) is None
    assert not life.should_exit(has_jobs=False, has_clients=False, now=1e9)
