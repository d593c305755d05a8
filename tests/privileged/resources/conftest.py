"""Real-kernel fixtures: a manager under a unique parent group, torn down even
when a test fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from joblet.resources.detect import CgroupLayout
from joblet.resources.interface import CgroupManager
from joblet.testing.cgroups import scratch_manager, usable_layout


@pytest.fixture(scope="session")
def layout() -> CgroupLayout:
    found = usable_layout()
    if isinstance(found, str):
        pytest.skip(f"cgroup tests: {found}")
    return found


@pytest.fixture
def manager(layout: CgroupLayout) -> Iterator[CgroupManager]:
    with scratch_manager(layout, "joblet-test") as made:
        yield made
