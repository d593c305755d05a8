"""Chaos tests: real daemons (the integration fixtures) under crashes, stops
and damaged files. Bounded so the whole directory runs in a few minutes;
JOBLET_CHAOS_LONG=1 runs the larger variants."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from integration.conftest import ROOT_NEEDED, RunningDaemon, launch_daemon
from integration.test_volumes_service import unmount_volumes

Sections = Mapping[str, Mapping[str, Any]]


@pytest.fixture
def chaos_daemon(tmp_path: Path) -> Iterator[Callable[..., RunningDaemon]]:
    """Daemons with config sections of the test's own; each is stopped at the
    end with its launcher, cgroups, namespace and volumes."""
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    started: list[RunningDaemon] = []

    def make(sections: Sections | None = None) -> RunningDaemon:
        running = launch_daemon(tmp_path / f"d{len(started)}", sections)
        started.append(running)
        return running

    yield make
    for running in started:
        try:
            running.stop()
        finally:
            unmount_volumes(running.root)
