"""Installing the shipped python-3.11 runtime with rnx, against its bare build.

    .venv/bin/python bench/runtime_install.py [--quick]

One daemon. rnx's wheel cache is filled first (outside the timing: the first
install on a machine also downloads numpy, 16 MB). Timed: the whole
`rnx runtime install python-3.11 --quiet` command from the repository (prepare,
upload, the build job in its sandbox, verify, the runtime's test job, commit),
the first install then reinstalls with --force; median. Baseline in the same
run: runtimes/python-3.11/build.sh alone, as root in a private mount namespace
with an empty directory at /opt/runtime (no daemon, no sandbox, no checks).
Target: <= 60 s.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import Report, parse_args, running_daemon

from joblet.cli.runtime_prepare import prepare

REPO = Path(__file__).resolve().parents[1]
RUNTIME = REPO / "runtimes" / "python-3.11"


def bare_build() -> float:
    """build.sh on the prepared files, in a private mount namespace."""
    with tempfile.TemporaryDirectory(prefix="joblet-bench-build-") as tmp:
        src, tree = Path(tmp) / "src", Path(tmp) / "tree"
        for entry in prepare(RUNTIME, io.StringIO()):
            path = src / entry.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(entry.content)
        tree.mkdir()
        script = (
            "set -e; mount -t tmpfs -o size=1m tmpfs /opt; mkdir /opt/runtime; "
            f"mount --bind {tree} /opt/runtime; SRC={src} sh {src}/build.sh"
        )
        start = time.perf_counter()
        subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            check=True, stdout=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
        )  # fmt: skip
        return time.perf_counter() - start


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 1 if args.quick else 3
    report = Report("runtime_install", args.quick)
    prepare(RUNTIME, io.StringIO())  # the wheel cache, filled outside the timing
    installs: list[float] = []
    builds: list[float] = []
    with running_daemon() as daemon:
        for i in range(runs):
            argv = daemon.rnx_argv("runtime", "install", "python-3.11", "--quiet")
            start = time.perf_counter()
            done = subprocess.run(
                [*argv, *(["--force"] if i else [])], cwd=REPO, capture_output=True, check=False
            )
            installs.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(done.stderr.decode()[-2000:])
            builds.append(bare_build())
    print("rnx runtime install python-3.11:", ", ".join(f"{s:.1f} s" for s in installs))
    print("build.sh alone:                 ", ", ".join(f"{s:.1f} s" for s in builds))
    report.figures["install_median_s"] = statistics.median(installs)
    report.figures["install_first_s"] = installs[0]
    report.baselines["bare_build_median_s"] = statistics.median(builds)
    report.check("install median", statistics.median(installs) <= 60, "<= 60 s")
    report.notes.append(f"cpus: {os.cpu_count()}; wheels from the cache (offline)")
    report.emit()


if __name__ == "__main__":
    main()
