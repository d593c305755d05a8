"""The workspace size cap sized from the disk under the daemon's root.

A job without a cap once wrote 1 GB to the host's root file system; `joblet
setup` writes a tenth of that disk, between 1 GiB and 100 GiB, as each job's
`joblet.maxWorkspaceSize` (a job that needs more asks for a volume).
"""

from __future__ import annotations

import os
from pathlib import Path

GIB = 1024 * 1024 * 1024
WORKSPACE_FRACTION = 10
MIN_WORKSPACE = 1 * GIB
MAX_WORKSPACE = 100 * GIB


def default_workspace_bytes(disk_total: int) -> int:
    """A tenth of the disk, clamped, in whole MiB."""
    size = min(max(disk_total // WORKSPACE_FRACTION, MIN_WORKSPACE), MAX_WORKSPACE)
    return size // (1024 * 1024) * (1024 * 1024)


def disk_total_under(path: Path) -> int:
    """The size of the file system that holds `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stat = os.statvfs(probe)
    return stat.f_blocks * stat.f_frsize
