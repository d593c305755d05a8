"""joblet.launcherIdleExit: how long a launcher with no job and no daemon waits."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.config.loader import parse_daemon_config

SECURITY = {"serverCert": "C", "serverKey": "K", "caCert": "A"}


def parse(joblet: dict[str, Any]) -> float:
    config = parse_daemon_config({"security": SECURITY, "joblet": joblet})
    return config.jobs.launcher_idle_exit_s


def test_a_minute_by_default_and_any_duration_or_zero_for_never() -> None:
    assert parse({}) == 60.0
    assert parse({"launcherIdleExit": "1m30s"}) == 90.0
    assert parse({"launcherIdleExit": 0}) == 0.0


def test_a_bad_value_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse({"launcherIdleExit": -1})
    with pytest.raises(ValueError):
        parse({"launcherIdleExit": "soon"})
