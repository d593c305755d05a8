from __future__ import annotations

from joblet.daemon.supervisor import backoff_delays


def test_backoff_doubles_up_to_cap() -> None:
    assert backoff_delays(0.5, 4.0) == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delays(0.2, 10.0)[-1] == 10.0
