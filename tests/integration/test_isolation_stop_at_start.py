"""A job stopped the moment it starts ends by SIGTERM, not by the kill after
the grace period: the stop's SIGTERM reaches the job's command even when it
comes before tini can take it or pass it on.

Every other round the job has a 1% CPU limit: its init, throttled by the
cgroup right after exec, takes longest to get there (without the launcher
holding the signal, such a stop ends by SIGKILL nearly every time)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import ROOT_NEEDED, RunningDaemon, wait_status
from .test_isolation_support import FINAL, run, start_isolation_daemon, stop_isolation_daemon

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

GRACE_S = 30
STOP_LIMIT_S = 10.0  # far below the grace period, far above a loaded stop
ROUNDS = 30
BUSY = 4  # CPU hogs on a host with fewer cores: the job's init starts slowly


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_isolation_daemon(
        tmp_path_factory.mktemp("stop-at-start"), joblet={"stopGracePeriod": f"{GRACE_S}s"}
    )
    yield running
    stop_isolation_daemon(running)


@pytest.fixture
def cpu_load() -> Iterator[None]:
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.send_signal(signal.SIGKILL)
            hog.wait()


def test_a_job_stopped_right_after_it_starts_ends_by_sigterm(
    daemon: RunningDaemon, cpu_load: None
) -> None:
    stub = daemon.jobs()
    for round_ in range(ROUNDS):
        job_id = run(stub, "sleep", "300", maxCpu=round_ % 2)
        started = time.monotonic()
        stopped = stub.StopJob(pb.StopJobReq(uuid=job_id), timeout=GRACE_S + 30)
        elapsed = time.monotonic() - started
        res = wait_status(stub, job_id, FINAL)
        what = f"round {round_}: {res.status}, {res.endReason!r}, exit {res.exitCode}"
        what += f", the stop took {elapsed:.1f} s"
        assert stopped.status == "STOPPED", what
        assert res.endReason.startswith("stopped by"), what
        assert res.exitCode == 128 + signal.SIGTERM, what
        assert elapsed < STOP_LIMIT_S, what
