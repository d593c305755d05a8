"""Real-kernel fixtures for the sampler: a cgroup manager under a unique parent
group, torn down even when a test fails."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.resources._fs import walk_groups
from joblet.resources.cleanup import cleanup_leftovers
from joblet.resources.detect import CgroupLayout, create_cgroup_manager, detect_layout
from joblet.resources.interface import CgroupManager

CGROUP_ROOT = Path("/sys/fs/cgroup")


@pytest.fixture(scope="session")
def cgroup_layout() -> CgroupLayout:
    if os.geteuid() != 0:
        pytest.skip("the sampler's kernel tests need root")
    found = detect_layout(CGROUP_ROOT)
    if found.version == "none":
        pytest.skip(f"no usable cgroups on this host: {found.reason}")
    probe = next(iter(found.controllers.values())) / f"joblet-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
    except OSError as exc:
        pytest.skip(f"cgroupfs is not writable here ({probe.parent}): {exc.strerror}")
    probe.rmdir()
    return found


@pytest.fixture
def cgroups(cgroup_layout: CgroupLayout) -> Iterator[CgroupManager]:
    parent = f"joblet-metrics-test-{uuid.uuid4().hex[:8]}"
    made = create_cgroup_manager(CGROUP_ROOT, parent)
    try:
        yield made
    finally:
        try:
            cleanup_leftovers(made)
        finally:
            for hierarchy in sorted(set(cgroup_layout.controllers.values())):
                for group in reversed(walk_groups(hierarchy / parent)):
                    group.rmdir()
