"""VolumeManager on the real kernel: ext4 on loop devices, tmpfs, sizes,
failures that leave nothing behind, removal and restart recovery."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from conftest import losetup_bind, mounts_under

from joblet.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from joblet.isolation import libc
from joblet.volumes import loop
from joblet.volumes.config import VolumesConfig
from joblet.volumes.manager import VolumeManager
from joblet.volumes.setup import SetupOptions

pytestmark = [pytest.mark.privileged, pytest.mark.asyncio]
MIB = 1024 * 1024


def fill(directory: str) -> int:
    """Write until the file system is full; the bytes it took."""
    written, chunk = 0, b"\xa5" * MIB
    fd = os.open(os.path.join(directory, "fill"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                n = os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]  # top up to the last few bytes
                continue
            written += n
        os.fsync(fd)
    finally:
        os.close(fd)
    return written


def devices_backed_by(image: str) -> set[str]:
    """The loop devices bound to `image`: only this test's own, whatever else
    other software attaches or detaches on the host meanwhile."""
    return {d for d, b in loop.read_bindings().items() if loop.backing_path(b) == image}


async def test_filesystem_volume_fills_to_its_size(manager: VolumeManager) -> None:
    info = await manager.create("data", "64MiB")
    assert info.path in mounts_under(str(manager.root))
    device = os.readlink(f"/sys/dev/block/{info.device}").split("/")[-1]
    assert device.startswith("loop")
    written = fill(info.path)
    assert 0.95 <= written / (64 * MIB) <= 1.05, written / MIB
    assert devices_backed_by(info.record.image) == {device}


async def test_memory_volume_enforces_its_size(manager: VolumeManager) -> None:
    info = await manager.create("scratch", "8MiB", "memory")
    assert manager.block_devices(["scratch"]) == ()
    assert 0.95 <= fill(info.path) / (8 * MIB) <= 1.05


async def test_block_devices_are_the_loop_devices(manager: VolumeManager) -> None:
    a = await manager.create("a", "16MiB")
    b = await manager.create("b", "16MiB")
    devices = manager.block_devices(["a", "b:ro", "a", "unknown"])
    assert devices == (a.device, b.device) and a.device != b.device
    for device in devices:
        name = os.path.basename(os.readlink(f"/sys/dev/block/{device}"))
        assert name.startswith("loop")


async def test_remove_unmounts_detaches_and_deletes(manager: VolumeManager) -> None:
    info = await manager.create("gone", "16MiB")
    memory = await manager.create("gone-mem", "4MiB", "memory")
    await manager.remove("gone")
    await manager.remove("gone-mem")
    assert mounts_under(str(manager.root)) == []
    assert devices_backed_by(info.record.image) == set()
    assert os.listdir(manager.root) == []
    assert manager.list() == []
    with pytest.raises(NotFound):
        await manager.remove("gone")
    assert not os.path.exists(memory.path)


async def test_create_refusals(manager: VolumeManager) -> None:
    await manager.create("dup", "4MiB", "memory")
    with pytest.raises(AlreadyExists):
        await manager.create("dup", "4MiB")
    for name in ("../etc", "a/b", "x" * 65, ".hidden", ""):
        with pytest.raises(InvalidArgument):
            await manager.create(name, "4MiB")
    with pytest.raises(InvalidArgument, match="maxSize"):
        await manager.create("huge", "3GiB")
    assert sorted(os.listdir(manager.root)) == ["dup"]


@pytest.mark.parametrize(
    "options",
    [SetupOptions(loop_control="/nonexistent/loop-control"), SetupOptions(mkfs="/bin/false")],
    ids=["loop", "mkfs"],
)
async def test_setup_failure_fails_create_and_leaves_nothing(
    vroot: Path, options: SetupOptions
) -> None:
    manager = VolumeManager(vroot, VolumesConfig(), options=options)
    with pytest.raises(FailedPrecondition, match="cannot create volume 'v'") as raised:
        await manager.create("v", "16MiB")
    assert "loop-control" in str(raised.value) or "mkfs failed" in str(raised.value)
    assert os.listdir(vroot) == []
    assert mounts_under(str(vroot)) == []
    assert manager.list() == []
    memory = await manager.create("v", "4MiB", "memory")  # the name is free again
    assert memory.path


async def test_removal_in_use_is_refused_naming_the_jobs(vroot: Path) -> None:
    users = {"shared": ["job-b", "job-a"]}
    manager = VolumeManager(vroot, VolumesConfig(), lambda name: users.get(name, []))
    await manager.create("shared", "4MiB", "memory")
    assert [(i.name, n) for i, n in manager.list()] == [("shared", 2)]
    with pytest.raises(FailedPrecondition, match="job-a, job-b"):
        await manager.remove("shared")
    users.clear()
    await manager.remove("shared")


async def test_resolve_for_job(manager: VolumeManager) -> None:
    data = await manager.create("data", "16MiB")
    mem = await manager.create("mem", "4MiB", "memory")
    assert manager.resolve_for_job(["data:ro", "mem"]) == (
        (data.path, "data", True),
        (mem.path, "mem", False),
    )
    with pytest.raises(NotFound):
        manager.resolve_for_job(["missing"])
    with pytest.raises(InvalidArgument):
        manager.resolve_for_job(["data", "data:ro"])


async def test_restart_keeps_mounts_and_reboot_remounts(manager: VolumeManager) -> None:
    data = await manager.create("data", "16MiB")
    mem = await manager.create("mem", "4MiB", "memory")
    Path(data.path, "kept").write_text("across restarts")
    Path(mem.path, "lost").write_text("in RAM")
    again = VolumeManager(manager.root, VolumesConfig())
    assert again.restore() == []  # a daemon restart: both still mounted
    assert Path(again.get("mem").path, "lost").exists()
    for point in mounts_under(str(manager.root)):  # a reboot, as far as we can tell
        libc.umount2(point)
    assert devices_backed_by(data.record.image) == set()  # autoclear: no loop left
    rebooted = VolumeManager(manager.root, VolumesConfig())
    assert rebooted.restore() == []
    assert Path(rebooted.get("data").path, "kept").read_text() == "across restarts"
    assert os.listdir(rebooted.get("mem").path) == []  # tmpfs comes back empty
    assert rebooted.block_devices(["data"]) != ()


async def test_broken_image_is_reported_not_recreated(manager: VolumeManager) -> None:
    data = await manager.create("data", "16MiB")
    libc.umount2(data.path)
    image = Path(data.record.image)
    image.write_bytes(b"\0" * 8192)  # no superblock any more
    rebooted = VolumeManager(manager.root, VolumesConfig())
    problems = rebooted.restore()
    assert len(problems) == 1 and "data" in problems[0]
    [(info, _)] = rebooted.list()
    assert info.error and "cannot mount" in info.error
    assert image.stat().st_size == 8192  # left for the operator
    with pytest.raises(FailedPrecondition, match="unavailable"):
        rebooted.resolve_for_job(["data"])
    image.unlink()
    assert "missing" in VolumeManager(manager.root, VolumesConfig()).restore()[0]
    await rebooted.remove("data")  # an unavailable volume can still be removed
    assert os.listdir(manager.root) == []


async def test_restore_cleans_leftovers_and_spares_others(
    manager: VolumeManager, tmp_path: Path
) -> None:
    data = await manager.create("data", "16MiB")
    stale = losetup_bind(Path(data.record.image))  # a second binding: a crash's leftover
    half = manager.root / "half"
    (half / "mnt").mkdir(parents=True)  # a create that died before its record
    foreign_image = tmp_path / "foreign.img"
    foreign_image.write_bytes(b"\0" * MIB)
    foreign = losetup_bind(foreign_image)
    try:
        again = VolumeManager(manager.root, VolumesConfig())
        assert again.restore() == []
        # The stale device's number may serve someone else's image by now.
        assert os.path.basename(stale) not in devices_backed_by(data.record.image)
        assert devices_backed_by(str(foreign_image)) == {os.path.basename(foreign)}
        assert not half.exists()
        assert Path(again.get("data").path).is_dir()
        assert manager.block_devices(["data"]) == again.block_devices(["data"])
    finally:
        loop.detach(foreign)
