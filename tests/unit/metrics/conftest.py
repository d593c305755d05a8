"""Real-kernel fixtures for the sampler: a cgroup manager under a unique parent
group, torn down even when a test fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from joblet.resources.detect import CgroupLayout
from joblet.resources.interface import CgroupManager
from joblet.testing.cgroups import scratch_manager, usable_layout


@pytest.fixture(scope="session")
def cgroup_layout() -> CgroupLayout:
    found = usable_layout()
    if isinstance(found, str):
        pytest.skip(f"the sampler's kernel tests: {found}")
    return found


@pytest.fixture
def cgroups(cgroup_layout: CgroupLayout) -> Iterator[CgroupManager]:
    with scratch_manager(cgroup_layout, "joblet-metrics-test") as made:
        yield made
