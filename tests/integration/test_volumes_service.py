"""VolumeService through a real daemon over mTLS: create, list, remove, the
refusals, the viewer's limits, and `rnx volume`. Also the daemon fixture of
the volume tests: its volumes are unmounted and loop devices detached at the
end (the daemon leaves them mounted on purpose: they outlive it)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.isolation import libc
from joblet.volumes import loop

from .conftest import ROOT_NEEDED, RunningDaemon, start_daemon


def unmount_volumes(root: Path) -> None:
    base = os.path.realpath(root / "volumes")
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(base + "/")), key=len, reverse=True):
        with contextlib.suppress(OSError):
            libc.umount2(point, libc.MNT_DETACH)
    for device in loop.leftovers(loop.read_bindings(), base, set()):
        with contextlib.suppress(OSError):
            loop.detach(f"/dev/{device}")


@contextlib.contextmanager
def volume_daemon(tmp: Path) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    if shutil.which("mkfs.ext4") is None or not os.path.exists("/dev/loop-control"):
        pytest.skip("filesystem volumes need mkfs.ext4 (e2fsprogs) and /dev/loop-control")
    running = start_daemon(tmp)
    try:
        yield running
    finally:
        running.stop()
        unmount_volumes(running.root)


@pytest.fixture(scope="module")
def vdaemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    with volume_daemon(tmp_path_factory.mktemp("voldaemon")) as running:
        yield running


def stub(d: RunningDaemon, node: str = "default") -> pb_grpc.VolumeServiceStub:
    return pb_grpc.VolumeServiceStub(d.channel(node))


def code_of(call: object, *args: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call(*args)  # type: ignore[operator]
    return raised.value.code()


def test_create_list_remove(vdaemon: RunningDaemon) -> None:
    volumes = stub(vdaemon)
    res = volumes.CreateVolume(pb.CreateVolumeReq(name="svc-a", size="16MiB"))
    assert (res.name, res.size, res.type) == ("svc-a", "16MiB", "filesystem")
    assert Path(res.path).is_dir() and str(vdaemon.root) in res.path
    volumes.CreateVolume(pb.CreateVolumeReq(name="svc-m", size="4MiB", type="memory"))
    listed = {v.name: v for v in volumes.ListVolumes(pb.EmptyRequest()).volumes}
    assert listed["svc-m"].type == "memory" and listed["svc-a"].jobCount == 0
    assert listed["svc-a"].createdTime
    for name in ("svc-a", "svc-m"):
        assert volumes.RemoveVolume(pb.RemoveVolumeReq(name=name)).success
    assert not (vdaemon.root / "volumes" / "svc-a").exists()


def test_refusals_carry_the_right_codes(vdaemon: RunningDaemon) -> None:
    volumes = stub(vdaemon)
    volumes.CreateVolume(pb.CreateVolumeReq(name="svc-dup", size="4MiB", type="memory"))
    create = volumes.CreateVolume
    assert (
        code_of(create, pb.CreateVolumeReq(name="svc-dup", size="4MiB"))
        == grpc.StatusCode.ALREADY_EXISTS
    )
    for bad in ("../x", "a" * 65, "a/b", ""):
        req = pb.CreateVolumeReq(name=bad, size="4MiB")
        assert code_of(create, req) == grpc.StatusCode.INVALID_ARGUMENT
    for size in ("", "lots", "200GB"):
        req = pb.CreateVolumeReq(name="svc-size", size=size)
        assert code_of(create, req) == grpc.StatusCode.INVALID_ARGUMENT
    req = pb.CreateVolumeReq(name="svc-t", size="4MiB", type="nfs")
    assert code_of(create, req) == grpc.StatusCode.INVALID_ARGUMENT
    gone = pb.RemoveVolumeReq(name="svc-none")
    assert code_of(volumes.RemoveVolume, gone) == grpc.StatusCode.NOT_FOUND
    volumes.RemoveVolume(pb.RemoveVolumeReq(name="svc-dup"))


def test_viewer_may_only_list(vdaemon: RunningDaemon) -> None:
    viewer = stub(vdaemon, "viewer")
    viewer.ListVolumes(pb.EmptyRequest())
    req = pb.CreateVolumeReq(name="svc-v", size="4MiB", type="memory")
    assert code_of(viewer.CreateVolume, req) == grpc.StatusCode.PERMISSION_DENIED
    remove = pb.RemoveVolumeReq(name="svc-v")
    assert code_of(viewer.RemoveVolume, remove) == grpc.StatusCode.PERMISSION_DENIED


def test_rnx_volume_commands(vdaemon: RunningDaemon) -> None:
    made = vdaemon.rnx("volume", "create", "rnx-v", "--size", "8MiB", "--type", "memory", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["type"] == "memory"
    table = vdaemon.rnx("volume", "list")
    assert table.returncode == 0 and b"rnx-v" in table.stdout and b"NAME" in table.stdout
    listed = json.loads(vdaemon.rnx("volume", "list", "--json").stdout)
    assert any(v["name"] == "rnx-v" for v in listed["volumes"])
    denied = vdaemon.rnx("volume", "remove", "rnx-v", node="viewer")
    assert denied.returncode != 0 and b"rnx: error:" in denied.stderr
    removed = vdaemon.rnx("volume", "remove", "rnx-v", "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout)["success"] is True
    again = vdaemon.rnx("volume", "remove", "rnx-v")
    assert again.returncode != 0 and b"not found" in again.stderr
