"""A daemon whose cgroup mount root holds no cgroups refuses to start, saying why;
with `cgroup.backend: none` it starts, warns, and runs jobs without limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import ROOT_NEEDED, launch_daemon

pytestmark = [pytest.mark.integration, pytest.mark.privileged]


@pytest.fixture
def hidden(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    empty = tmp_path / "no-cgroups"
    empty.mkdir()
    return empty


def test_serve_refuses_without_usable_cgroups(tmp_path: Path, hidden: Path) -> None:
    with pytest.raises(RuntimeError) as refused:
        started = launch_daemon(tmp_path / "d", {"cgroup": {"mountRoot": str(hidden)}})
        started.stop()  # it should not have started: clean up, then fail
    text = str(refused.value)
    assert text.startswith("daemon exited with 1:"), text
    expected = (
        f"joblet: error: no usable cgroups under {hidden}: no cgroup filesystem mounted "
        f"under {hidden}; set cgroup.backend: none to run jobs without resource limits"
    )
    assert expected in text.splitlines(), text
    assert "Traceback" not in text


def test_backend_none_starts_warns_and_runs_jobs_without_limits(
    tmp_path: Path, hidden: Path
) -> None:
    sections = {"cgroup": {"mountRoot": str(hidden), "backend": "none"}}
    daemon = launch_daemon(tmp_path / "d", sections)
    try:
        log = daemon.log_path.read_text()
        assert "WARNING" in log and "cgroup.backend is none" in log, log
        assert "without CPU, memory, I/O or process limits" in log
        ran = daemon.rnx("run", "-f", "sh", "-c", "echo ran-without-cgroups")
        assert ran.returncode == 0, ran.stderr
        assert b"ran-without-cgroups" in ran.stdout
        # A job that asks for a limit is refused: no limit is silently dropped.
        limited = daemon.rnx("run", "--max-memory", "64M", "true")
        assert limited.returncode != 0
        assert b"resource limits are unavailable on this host" in limited.stderr
        assert b"Traceback" not in limited.stderr
    finally:
        daemon.stop()
