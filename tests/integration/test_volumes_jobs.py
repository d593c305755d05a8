"""Jobs using volumes through a real daemon: a filesystem volume filled to
ENOSPC by one job and read by the next, `:ro`, a memory volume's size, removal
while in use, survival of kill -9 and of a simulated reboot, and a job's
symlink inside a volume never followed by the daemon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import RunningDaemon, wait_status
from .test_volumes_service import unmount_volumes, volume_daemon

DONE = {"COMPLETED", "FAILED", "STOPPED"}


@pytest.fixture(scope="module")
def vdaemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    with volume_daemon(tmp_path_factory.mktemp("voljobs")) as running:
        yield running


def volumes(d: RunningDaemon) -> pb_grpc.VolumeServiceStub:
    return pb_grpc.VolumeServiceStub(d.channel())


def run(d: RunningDaemon, script: str, *vols: str, wait: bool = True) -> pb.GetJobStatusRes:
    res = d.jobs().RunJob(pb.RunJobRequest(command="sh", args=["-c", script], volumes=list(vols)))
    if not wait:
        return wait_status(d.jobs(), res.jobUuid, {"RUNNING"})
    return wait_status(d.jobs(), res.jobUuid, DONE, timeout=60)


def output(d: RunningDaemon, job_id: str) -> bytes:
    chunks = d.jobs().GetJobLogs(pb.GetJobLogsReq(uuid=job_id))
    return b"".join(c.payload for c in chunks)


def test_fill_to_enospc_then_read_in_the_next_job(vdaemon: RunningDaemon) -> None:
    volumes(vdaemon).CreateVolume(pb.CreateVolumeReq(name="fill", size="64MiB"))
    fill = "dd if=/dev/zero of=/volumes/fill/big bs=1M 2>&1; sync; wc -c < /volumes/fill/big"
    first = run(vdaemon, fill, "fill")
    text = output(vdaemon, first.uuid)
    assert b"No space left on device" in text
    written = int(text.split()[-1])
    assert 0.95 <= written / (64 * 1024 * 1024) <= 1.05, written
    second = run(vdaemon, "wc -c < /volumes/fill/big", "fill:ro")
    assert int(output(vdaemon, second.uuid).split()[-1]) == written


def test_read_only_gives_erofs(vdaemon: RunningDaemon) -> None:
    volumes(vdaemon).CreateVolume(pb.CreateVolumeReq(name="ro", size="4MiB", type="memory"))
    job = run(vdaemon, "touch /volumes/ro/x", "ro:ro")
    assert job.exitCode != 0
    assert b"Read-only file system" in output(vdaemon, job.uuid)


def test_memory_volume_size_is_enforced(vdaemon: RunningDaemon) -> None:
    volumes(vdaemon).CreateVolume(pb.CreateVolumeReq(name="mem", size="8MiB", type="memory"))
    job = run(vdaemon, "dd if=/dev/zero of=/volumes/mem/f bs=1M count=16", "mem")
    assert job.exitCode != 0
    assert b"No space left on device" in output(vdaemon, job.uuid)


def test_unknown_volume_is_not_found(vdaemon: RunningDaemon) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        vdaemon.jobs().RunJob(pb.RunJobRequest(command="true", volumes=["nope"]))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_removal_in_use_is_refused(vdaemon: RunningDaemon) -> None:
    stub = volumes(vdaemon)
    stub.CreateVolume(pb.CreateVolumeReq(name="busy", size="4MiB", type="memory"))
    job = run(vdaemon, "sleep 30", "busy", wait=False)
    listed = {v.name: v for v in stub.ListVolumes(pb.EmptyRequest()).volumes}
    assert listed["busy"].jobCount == 1
    with pytest.raises(grpc.RpcError) as raised:
        stub.RemoveVolume(pb.RemoveVolumeReq(name="busy"))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert job.uuid in (raised.value.details() or "")
    vdaemon.jobs().StopJob(pb.StopJobReq(uuid=job.uuid))
    wait_status(vdaemon.jobs(), job.uuid, DONE)
    assert stub.RemoveVolume(pb.RemoveVolumeReq(name="busy")).success


def test_symlink_inside_a_volume_is_never_followed(vdaemon: RunningDaemon, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("host data")
    volumes(vdaemon).CreateVolume(pb.CreateVolumeReq(name="links", size="16MiB"))
    run(
        vdaemon,
        f"ln -s {outside} /volumes/links/mnt; ln -s {outside}/keep /volumes/links/image",
        "links",
    )
    volumes(vdaemon).RemoveVolume(pb.RemoveVolumeReq(name="links"))
    assert (outside / "keep").read_text() == "host data"


def test_data_survives_kill9_and_a_simulated_reboot(vdaemon: RunningDaemon) -> None:
    stub = volumes(vdaemon)
    stub.CreateVolume(pb.CreateVolumeReq(name="durable", size="16MiB"))
    run(vdaemon, "echo kept > /volumes/durable/f; sync", "durable")
    vdaemon.kill9()
    vdaemon.restart()
    again = run(vdaemon, "cat /volumes/durable/f", "durable")
    assert output(vdaemon, again.uuid) == b"kept\n"
    vdaemon.stop_daemon_only()
    unmount_volumes(vdaemon.root)  # what a reboot does to our mounts and loop devices
    vdaemon.restart()
    after = run(vdaemon, "cat /volumes/durable/f", "durable")
    assert output(vdaemon, after.uuid) == b"kept\n"
