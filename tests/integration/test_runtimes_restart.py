"""Runtimes across a daemon restart: installed ones are listed again, a job
that outlived a killed daemon keeps its (superseded) build, which goes once
that job ends; an install cut by the crash leaves nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, start_daemon, wait_status
from .jobs_support import FINAL, logs, run
from .runtime_sources import local_request, write_runtime

pytestmark = pytest.mark.integration


def test_restart_keeps_runtimes_and_the_pinned_build(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    daemon = start_daemon(tmp_path / "d")
    try:
        src = write_runtime(tmp_path / "src", "kept", version="v1")
        stub = pb_grpc.RuntimeServiceStub(daemon.channel())
        assert stub.InstallRuntimeFromLocal(local_request(src), timeout=120).status == "installed"
        runtimes = daemon.root / "runtimes" / "kept"
        old = os.readlink(runtimes / "current")
        reader = "while true; do cat /opt/runtime/version; sleep 0.2; done"
        first = run(daemon.jobs(), "sh", "-c", reader, runtime="kept")
        wait_status(daemon.jobs(), first, {"RUNNING"})
        write_runtime(src, "kept", version="v2")
        forced = stub.InstallRuntimeFromLocal(local_request(src, force=True), timeout=120)
        assert forced.status == "installed"
        # An install cut by the crash: its staging must not survive the restart.
        (daemon.root / "runtimes" / ".staging" / "cut").mkdir()
        daemon.kill9()
        daemon.restart()
        stub = pb_grpc.RuntimeServiceStub(daemon.channel())
        listed = [r.name for r in stub.ListRuntimes(pb.EmptyRequest()).runtimes]
        assert listed == ["kept"]
        assert not (daemon.root / "runtimes" / ".staging" / "cut").exists()
        assert (runtimes / old).is_dir()  # the running job pinned it again
        second = run(daemon.jobs(), "cat", "/opt/runtime/version", runtime="kept")
        wait_status(daemon.jobs(), second, FINAL, timeout=60)
        assert logs(daemon.jobs(), second) == b"v2\n"
        daemon.jobs().StopJob(pb.StopJobReq(uuid=first))
        wait_status(daemon.jobs(), first, FINAL, timeout=60)
        assert set(logs(daemon.jobs(), first).split()) == {b"v1"}
        deadline = time.monotonic() + 20
        while (runtimes / old).exists():
            assert time.monotonic() < deadline, "the superseded build outlived its last job"
            time.sleep(0.05)
    finally:
        daemon.stop()
