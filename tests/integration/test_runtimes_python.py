"""The shipped python-3.11 runtime, end to end: `rnx runtime install
python-3.11` from the repository (wheels fetched by rnx), then numpy in a job
comes from /opt/runtime at the pinned version, not Debian's."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, RunningDaemon, start_daemon, wait_status
from .jobs_support import FINAL, logs, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtimes" / "python-3.11"
INSTALL_BUDGET_S = 90.0


def pinned_numpy() -> str:
    match = re.search(r"^numpy==(\S+)", (RUNTIME / "requirements.txt").read_text(), re.M)
    assert match is not None
    return match.group(1)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    if not RUNTIME.is_dir() or importlib.util.find_spec("joblet.cli.runtime_prepare") is None:
        pytest.skip("the shipped python-3.11 runtime or rnx's wheel preparation is missing")
    if not Path("/usr/bin/python3.11").exists():
        pytest.skip("Debian's python3.11 is not installed (scripts/deps.sh)")
    running = start_daemon(tmp_path_factory.mktemp("pydaemon"))
    yield running
    running.stop()


def test_install_then_numpy_from_the_runtime(daemon: RunningDaemon) -> None:
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    started = time.monotonic()
    done = subprocess.run(
        [*cmd, "runtime", "install", "python-3.11", "--quiet"],
        cwd=REPO, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert b"Runtime installed: python-3.11" in done.stdout
    assert took < INSTALL_BUDGET_S, f"installing took {took:.0f}s"
    code = "import numpy; print(numpy.__version__, numpy.__file__)"
    job = run(daemon.jobs(), "python3", "-c", code, runtime="python-3.11")
    assert wait_status(daemon.jobs(), job, FINAL, timeout=60).status == "COMPLETED"
    version, path = logs(daemon.jobs(), job).decode().split()
    assert version == pinned_numpy()
    assert path.startswith("/opt/runtime/venv/")
    write = run(daemon.jobs(), "touch", "/opt/runtime/x", runtime="python-3.11")
    assert wait_status(daemon.jobs(), write, FINAL, timeout=60).status == "FAILED"
    test = pb_grpc.RuntimeServiceStub(daemon.channel()).TestRuntime(
        pb.RuntimeTestReq(runtime="python-3.11"), timeout=120
    )
    assert test.success, test.output + test.error
    assert pinned_numpy() in test.output
