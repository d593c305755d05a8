"""Real cgroups for tests: find out whether this host can give them, and a
manager under a unique parent group that is torn down even when a test fails."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from joblet.resources._fs import walk_groups
from joblet.resources.cleanup import cleanup_leftovers
from joblet.resources.detect import CgroupLayout, create_cgroup_manager, detect_layout
from joblet.resources.interface import CgroupManager, JobCgroup

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


# The highest weight each cgroup version takes (v1 cpu.shares, v2 cpu.weight).
_TOP_WEIGHTS = (("cpu.shares", "262144"), ("cpu.weight", "10000"))


def favour_cpu(group: Path) -> None:
    """Give `group` and every group above it, up to the hierarchy's root,
    the highest CPU weight. A test of a CPU limit then measures the limit:
    other work on a loaded host, at the default weight, cannot keep a job
    in `group` from the CPU time its limit allows."""
    while (group.parent / "cgroup.procs").exists():  # the root itself has no weight
        for name, value in _TOP_WEIGHTS:
            if (group / name).exists():
                (group / name).write_text(value)
        group = group.parent


def measure_cpu(job: JobCgroup, cpu_seconds: float, timeout: float) -> tuple[float, int]:
    """CPU-seconds per second of wall time the job uses, from now until it
    has used `cpu_seconds` more (or `timeout` passed), from its cgroup's own
    usage counter; and how many periods its quota throttled it meanwhile."""
    before, start = job.read_stats(), time.monotonic()
    while True:
        time.sleep(0.1)
        now, elapsed = job.read_stats(), time.monotonic() - start
        used = (now.cpu_usage_usec - before.cpu_usage_usec) / 1e6
        if used >= cpu_seconds or elapsed >= timeout:
            return used / elapsed, now.cpu_nr_throttled - before.cpu_nr_throttled
