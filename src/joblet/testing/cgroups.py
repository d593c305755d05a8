"""Real cgroups for tests: find out whether this host can give them, and a
manager under a unique parent group that is torn down even when a test fails."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from joblet.resources._fs import walk_groups
from joblet.resources.cleanup import cleanup_leftovers
from joblet.resources.detect import CgroupLayout, create_cgroup_manager, detect_layout
from joblet.resources.interface import CgroupManager

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_layout(root: Path = CGROUP_ROOT) -> CgroupLayout | str:
    """This host's cgroup layout, or why tests cannot use it (a skip reason)."""
    if os.geteuid() != 0:
        return "needs root"
    found = detect_layout(root)
    if found.version == "none":
        return f"no usable cgroups on this host: {found.reason}"
    probe = next(iter(found.controllers.values())) / f"joblet-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
    except OSError as exc:
        return f"cgroupfs is not writable here ({probe.parent}): {exc.strerror}"
    probe.rmdir()
    return found


@contextlib.contextmanager
def scratch_manager(
    layout: CgroupLayout, prefix: str, root: Path = CGROUP_ROOT
) -> Iterator[CgroupManager]:
    """A manager under `prefix-<random>`; on exit its jobs are killed and every
    group it made, the parent included, is removed."""
    parent = f"{prefix}-{uuid.uuid4().hex[:8]}"
    made = create_cgroup_manager(root, parent)
    try:
        yield made
    finally:
        try:
            cleanup_leftovers(made)
        finally:
            for hierarchy in sorted(set(layout.controllers.values())):
                for group in reversed(walk_groups(hierarchy / parent)):
                    group.rmdir()
