"""Device access probes for tests of the device rules: what a process in a
job's cgroup gets when it opens or creates a device node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# Run in the job's cgroup: each step is ["open", path, "r"|"w"|"rw"] or
# ["mknod", path, major, minor]; prints one result per step, "ok" or the
# errno's name.
PROBE = r"""
import errno, json, os, sys
flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}
results = []
for step in json.loads(sys.argv[1]):
    try:
        if step[0] == "mknod":
            os.mknod(step[1], 0o600 | 0o020000, os.makedev(step[2], step[3]))
        else:
            os.close(os.open(step[1], flags[step[2]]))
        results.append("ok")
    except OSError as exc:
        results.append(errno.errorcode.get(exc.errno, str(exc.errno)))
print(json.dumps(results))
"""


def make_char_node(path: Path, major: int, minor: int) -> Path:
    """A character device node (as root): with no driver behind the number,
    an allowed open fails with ENXIO, a denied one with EPERM."""
    os.mknod(path, 0o600 | 0o020000, os.makedev(major, minor))
    return path


def probe_in(procs_files: Sequence[Path], steps: Sequence[Sequence[object]]) -> list[str]:
    """Run PROBE in the cgroup(s) whose cgroup.procs files are given."""
    files = " ".join(f"'{p}'" for p in procs_files)
    script = f'for f in {files}; do echo $$ > "$f"; done; exec "$@"'
    argv = ["sh", "-c", script, "sh", sys.executable, "-c", PROBE, json.dumps(list(steps))]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    results: list[str] = json.loads(done.stdout)
    return results
