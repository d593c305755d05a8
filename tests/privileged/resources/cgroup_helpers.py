"""Helpers for the real-kernel cgroup tests."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

from joblet.resources.interface import JobCgroup


def spawn_in(job: JobCgroup, *argv: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start `argv` already inside the job's cgroup: a shell joins every
    hierarchy, then execs, as the launcher does."""
    files = " ".join(shlex.quote(str(p)) for p in job.procs_files())
    script = f'for f in {files}; do echo $$ > "$f"; done; exec "$@"'
    return subprocess.Popen(["sh", "-c", script, "sh", *argv], **kwargs)


def pid_gone(pid: int) -> bool:
    """True when `pid` no longer runs (absent, or a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
