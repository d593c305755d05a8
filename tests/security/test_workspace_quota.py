"""A job cannot fill the host's disk through its workspace (joblet.maxWorkspaceSize).

Each workspace is a btrfs subvolume with a limit, in a file system the daemon
keeps in a sparse image under its root; these run a real daemon with a small
limit and check what a job, its uploads and its deletion can do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from integration.conftest import RunningDaemon, start_daemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("mkfs.btrfs") is None, reason="needs mkfs.btrfs (btrfs-progs)"),
]

MIB = 1024 * 1024
LIMIT = 32 * MIB
DONE = {"COMPLETED", "FAILED"}


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    running = start_daemon(tmp_path_factory.mktemp("quota"), maxWorkspaceSize="32MiB")
    yield running
    running.stop()


def run_sh(d: RunningDaemon, script: str, **fields: object) -> tuple[pb.GetJobStatusRes, str]:
    stub = d.jobs()
    job_id = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", script], **fields)).jobUuid
    status = wait_status(stub, job_id, DONE, timeout=60)
    out = b"".join(c.payload for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id)))
    return status, out.decode(errors="replace")


def image_bytes(d: RunningDaemon) -> int:
    """What the workspaces' image really takes on the host disk."""
    return os.stat(d.root / "workspaces.img").st_blocks * 512


def test_a_job_cannot_write_past_its_limit(capped: RunningDaemon) -> None:
    before = image_bytes(capped)
    script = "dd if=/dev/zero of=/work/big bs=1M count=200 2>&1; sync; wc -c < /work/big"
    _, out = run_sh(capped, script)
    assert "Disk quota exceeded" in out, out
    written = int(out.split()[-1])
    assert LIMIT * 0.8 <= written <= LIMIT, written
    # The host disk paid for at most the limit (and the file system's own metadata).
    assert image_bytes(capped) - before <= LIMIT + 16 * MIB


def test_each_job_has_its_own_limit(capped: RunningDaemon) -> None:
    stub = capped.jobs()
    fill = "dd if=/dev/zero of=/work/f bs=1M count=24 2>&1 | tail -1; sync; wc -c < /work/f"
    ids = [stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", fill])).jobUuid for _ in range(2)]
    for job_id in ids:
        assert wait_status(stub, job_id, DONE, timeout=60).exitCode == 0
        out = b"".join(c.payload for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id)))
        assert int(out.split()[-1]) == 24 * MIB, out


def test_uploads_past_the_limit_are_refused_and_leave_nothing(capped: RunningDaemon) -> None:
    workspaces = sorted(os.listdir(capped.root / "workspaces"))
    jobs = sorted(os.listdir(capped.root / "jobs"))
    uploads = [
        pb.FileUpload(path=f"part{i}", content=os.urandom(12 * MIB), mode=0o644) for i in range(3)
    ]
    # Over the limit in all: refused before anything is written.
    with pytest.raises(grpc.RpcError) as raised:
        capped.jobs().RunJob(pb.RunJobRequest(command="true", uploads=uploads))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "maxWorkspaceSize" in (raised.value.details() or "")
    assert sorted(os.listdir(capped.root / "workspaces")) == workspaces
    assert sorted(os.listdir(capped.root / "jobs")) == jobs


# btrfs's ioctls: a subvolume of the job's own would be a qgroup outside the limit.
MAKE_SUBVOLUME = """
import fcntl, os, struct
fd = os.open("/work", os.O_RDONLY)
args = struct.pack("=q", 0) + b"escape".ljust(4088, b"\\0")
try:
    fcntl.ioctl(fd, 0x5000940E, bytearray(args), True)
    print("made")
except OSError as exc:
    print("refused", exc.errno)
"""


def test_uploads_that_fill_the_limit_with_metadata_are_refused_cleanly(
    capped: RunningDaemon,
) -> None:
    """Under the limit in bytes, over it once the file system's own share is
    counted: the kernel's EDQUOT while writing them, the same clean refusal."""
    workspaces = sorted(os.listdir(capped.root / "workspaces"))
    uploads = [pb.FileUpload(path="whole", content=os.urandom(LIMIT - 4096), mode=0o644)]
    uploads += [pb.FileUpload(path=f"d{i}/f", content=b"x" * 2048, mode=0o644) for i in range(64)]
    try:
        job_id = capped.jobs().RunJob(pb.RunJobRequest(command="true", uploads=uploads)).jobUuid
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
        assert sorted(os.listdir(capped.root / "workspaces")) == workspaces
    else:  # it fit after all: then it ran
        assert wait_status(capped.jobs(), job_id, DONE, timeout=60).exitCode == 0


def test_a_job_cannot_make_a_subvolume_outside_its_limit(capped: RunningDaemon) -> None:
    script = (
        f"python3 -c '{MAKE_SUBVOLUME}'; "
        "dd if=/dev/zero of=/work/escape/big bs=1M count=64 2>&1 | tail -1"
    )
    _, out = run_sh(capped, script)
    assert "refused 1" in out, out  # EPERM from the job's seccomp filter


def test_the_workspaces_are_private_and_inert_on_the_host(capped: RunningDaemon) -> None:
    status, _ = run_sh(capped, "cp /bin/sh /work/sh && chmod 4755 /work/sh")
    work = capped.workspace(status.uuid)
    assert work.parent == capped.root / "workspaces"
    assert (work.parent.stat().st_mode & 0o777) == 0o700
    assert (work.stat().st_mode & 0o077) == 0
    flags = os.statvfs(work).f_flag
    assert flags & os.ST_NOSUID and flags & os.ST_NODEV


def test_deleting_a_job_frees_its_workspace(capped: RunningDaemon) -> None:
    script = "dd if=/dev/zero of=/work/f bs=1M count=16 2>/dev/null; mkdir -p /work/a/b/c"
    status, _ = run_sh(capped, script)
    work = capped.workspace(status.uuid)
    assert work.is_dir()
    capped.jobs().DeleteJob(pb.DeleteJobReq(uuid=status.uuid))
    assert not work.exists()
    assert not (capped.root / "jobs" / status.uuid).exists()


def test_a_scheduled_jobs_uploads_survive_a_restart(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    d = make_daemon(maxWorkspaceSize="32MiB")
    upload = pb.FileUpload(path="in.txt", content=b"kept\n", mode=0o644)
    req = pb.RunJobRequest(command="cat", args=["in.txt"], uploads=[upload], schedule="4s")
    job_id = d.jobs().RunJob(req).jobUuid
    d.kill9()
    d.restart()
    status = wait_status(d.jobs(), job_id, DONE, timeout=60)
    out = b"".join(c.payload for c in d.jobs().GetJobLogs(pb.GetJobLogsReq(uuid=job_id)))
    assert status.exitCode == 0 and out == b"kept\n", out


def test_a_clean_stop_unmounts_the_workspaces(make_daemon: Callable[..., RunningDaemon]) -> None:
    d = make_daemon(maxWorkspaceSize="32MiB")
    point = os.path.realpath(d.root / "workspaces")
    image = str(d.root / "workspaces.img")
    assert os.path.ismount(point)
    run_sh(d, "echo x > /work/x")
    d.stop_daemon_only()
    assert not os.path.ismount(point)
    # The loop device is released once the kernel has torn the file system
    # down, which a lazy unmount leaves to finish on its own: a loaded host
    # takes a moment.
    deadline = time.monotonic() + 15
    while _loops_of(image) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _loops_of(image) == ""


def _loops_of(image: str) -> str:
    losetup = subprocess.run(["losetup", "-j", image], capture_output=True, text=True, check=True)
    return losetup.stdout.strip()
