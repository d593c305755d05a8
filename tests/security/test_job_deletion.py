"""Deleting jobs through a real daemon whose workspaces a job shaped against it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.conftest import RunningDaemon, start_daemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = pytest.mark.integration

# Nests 1,200 directories in /work, each entered before the next is made.
DEEP = "import os\nfor _ in range(1200):\n    os.mkdir('d'); os.chdir('d')\nopen('f', 'w')"


def _finished_job(daemon: RunningDaemon, *args: str) -> str:
    stub = daemon.jobs()
    job_id = stub.RunJob(pb.RunJobRequest(command=args[0], args=args[1:])).jobUuid
    wait_status(stub, job_id, {"COMPLETED"}, timeout=60)
    return str(job_id)


def test_delete_removes_a_deep_tree_and_not_a_link_target(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    job_id = _finished_job(daemon, "python3", "-c", DEEP)
    job_dir, work = daemon.root / "jobs" / job_id, daemon.workspace(job_id)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    (work / "link").symlink_to(outside, target_is_directory=True)
    res = daemon.jobs().DeleteJob(pb.DeleteJobReq(uuid=job_id))
    assert res.success, res.message
    assert not job_dir.exists() and not work.exists()
    assert (outside / "keep").read_text() == "keep"


@pytest.fixture(scope="module")
def plain_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """Workspaces as plain directories (joblet.maxWorkspaceSize: 0), removed
    file by file: a subvolume goes in one ioctl, whatever it holds."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    running = start_daemon(tmp_path_factory.mktemp("plain"), maxWorkspaceSize=0)
    yield running
    running.stop()


def test_delete_all_goes_on_past_an_undeletable_entry(plain_daemon: RunningDaemon) -> None:
    daemon = plain_daemon
    stub = daemon.jobs()
    stub.DeleteAllJobs(pb.DeleteAllJobsReq())
    stuck = _finished_job(daemon, "sh", "-c", "echo x > /work/pinned")
    deep = _finished_job(daemon, "python3", "-c", DEEP)
    plain = _finished_job(daemon, "true")
    pinned = daemon.workspace(stuck) / "pinned"
    try:
        subprocess.run(["chattr", "+i", str(pinned)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"chattr +i not available here: {exc}")
    try:
        res = stub.DeleteAllJobs(pb.DeleteAllJobsReq())
    finally:
        subprocess.run(  # wherever removal left it
            ["chattr", "-R", "-i", str(pinned.parent.parent)], check=False, capture_output=True
        )
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(daemon.root / "jobs" / stuck)
    assert not res.success
    assert res.deleted_count == 3
    assert stuck in res.message and "pinned" in res.message, res.message
    for job_id in (deep, plain):
        assert not (daemon.root / "jobs" / job_id).exists()
    assert not stub.ListJobs(pb.EmptyRequest()).jobs
    # the daemon still runs jobs afterwards
    _finished_job(daemon, "true")


def _fragmented_file(path: Path, extents: int = 20_000) -> None:
    """A file of `extents` separate 4 KiB pieces: written in half a second,
    its unlink takes the filesystem seconds (each extent is freed)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC)
    try:
        block = b"x" * 4096
        for index in range(extents):
            os.pwrite(fd, block, index * 8192)
        os.fsync(fd)
    finally:
        os.close(fd)


def test_other_calls_are_served_while_a_big_workspace_is_removed(
    plain_daemon: RunningDaemon,
) -> None:
    daemon = plain_daemon
    job_id = _finished_job(daemon, "true")
    _fragmented_file(daemon.workspace(job_id) / "fragmented")
    stub = daemon.jobs()
    done = threading.Event()
    result: list[Any] = []

    def delete() -> None:
        try:
            result.append(stub.DeleteJob(pb.DeleteJobReq(uuid=job_id), timeout=120))
        finally:
            done.set()

    started = time.monotonic()
    threading.Thread(target=delete, daemon=True).start()
    slowest = 0.0
    while not done.is_set():
        asked = time.monotonic()
        stub.ListJobs(pb.EmptyRequest(), timeout=120)
        slowest = max(slowest, time.monotonic() - asked)
    took = time.monotonic() - started
    assert result and result[0].success, result
    assert not (daemon.root / "jobs" / job_id).exists()
    if took < 1.0:
        pytest.skip(f"removal took {took:.2f}s: too quick to tell")
    assert slowest < took / 2, f"ListJobs took {slowest:.2f}s while removal took {took:.2f}s"
