"""A job that writes to its workspace without bound (there is no workspace
quota, see docs/SECURITY.md) fills the file system under the daemon's root:
new jobs are refused with RESOURCE_EXHAUSTED, the daemon, a running job and
its relay go on, and deleting the job gives the room back.

The root is the small tmpfs of the disk-full chaos test."""

from __future__ import annotations

import os

import grpc
import pytest
from chaos.test_disk_full import daemon  # noqa: F401  (the fixture: a 64 MB tmpfs root)
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb

from .exhaustion import FINAL, log_text, stop_quietly, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FILL = "dd if=/dev/zero of=/work/fill bs=1M; sleep 300"
TICKER = "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.05; done"
DROPPED = b"output dropped: no space left on device"


def _free_bytes(running: RunningDaemon) -> int:
    st = os.statvfs(running.root)
    return st.f_bavail * st.f_frsize


def test_a_job_filling_its_workspace_cannot_stop_the_daemon(
    daemon: RunningDaemon,  # noqa: F811
) -> None:
    stub = daemon.jobs()
    ticker = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", TICKER])).jobUuid
    wait_until(lambda: b"tick-5\n" in log_text(stub, ticker), "the ticker's output")
    filler = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", FILL])).jobUuid
    try:
        wait_until(lambda: _free_bytes(daemon) < 1 << 20, "the root's file system to fill")
        with pytest.raises(grpc.RpcError) as refused:
            stub.RunJob(pb.RunJobRequest(command="echo", args=["no room"]))
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert wait_status(stub, ticker, {"RUNNING"}, timeout=5)
        assert wait_status(stub, filler, {"RUNNING"}, timeout=5)  # dd ended, sleep goes on
        stub.StopJob(pb.StopJobReq(uuid=filler))
        assert wait_status(stub, filler, FINAL, timeout=60).status == "STOPPED"
        deleted = stub.DeleteJob(pb.DeleteJobReq(uuid=filler))
        assert deleted.success, deleted.message
        wait_until(lambda: _free_bytes(daemon) > 16 << 20, "the room to come back")
        after = stub.RunJob(pb.RunJobRequest(command="echo", args=["after"])).jobUuid
        assert wait_status(stub, after, FINAL).status == "COMPLETED"
        assert log_text(stub, after) == b"after\n"
        ticks = log_text(stub, ticker).count(b"tick-")
        wait_until(
            lambda: log_text(stub, ticker).count(b"tick-") > ticks + 5, "the ticker's output after"
        )
        text = log_text(stub, ticker)
        assert text.count(DROPPED) <= 1, text[-2000:]
    finally:
        stop_quietly(stub, ticker, filler)
