"""A runtime build across a daemon restart: whoever waited for it went with
the old daemon, so the new one ends it instead of following or rerunning it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .conftest import ROOT_NEEDED, wait_status
from .jobs_support import FINAL
from .runtime_support import launch_runtime_daemon, write_plan

pytestmark = pytest.mark.integration


def test_a_build_running_at_a_restart_is_stopped(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    top = tmp_path / "resolver"
    daemon = launch_runtime_daemon(tmp_path / "d", top)
    try:
        src, staging = tmp_path / "src", tmp_path / "staging"
        src.mkdir()
        staging.mkdir()
        (src / "build.sh").write_text("echo started; sleep 600\n")
        plan = {"runtime_name": "slow", "source_dir": str(src), "staging_dir": str(staging),
                "script": "build.sh", "timeout_s": 600, "max_memory_mb": 128}  # fmt: skip
        write_plan(top, "slow", plan)
        job_file = top / "builds" / "slow.job"
        deadline = time.monotonic() + 30
        while not job_file.exists():
            assert time.monotonic() < deadline, "the build was not submitted"
            time.sleep(0.05)
        job_id = job_file.read_text()
        wait_status(daemon.jobs(), job_id, {"RUNNING"})
        daemon.kill9()
        daemon.restart()
        status = wait_status(daemon.jobs(), job_id, FINAL, timeout=60)
        assert (status.status, status.endReason) == ("STOPPED", "stopped by the daemon's restart")
    finally:
        daemon.stop()
