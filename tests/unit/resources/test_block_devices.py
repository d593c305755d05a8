from __future__ import annotations

from pathlib import Path

from joblet.resources.devices import block_devices_for, whole_disk


def fake_sysfs(tmp_path: Path) -> Path:
    """/sys/dev/block links into /sys/devices as the kernel lays them out."""
    sysfs = tmp_path / "sys"
    disk = sysfs / "devices/pci0000:00/virtio1/block/vda"
    (disk / "vda1").mkdir(parents=True)
    (disk / "dev").write_text("254:0\n")
    (disk / "vda1/dev").write_text("254:1\n")
    (disk / "vda1/partition").write_text("1\n")
    links = sysfs / "dev/block"
    links.mkdir(parents=True)
    (links / "254:0").symlink_to("../../devices/pci0000:00/virtio1/block/vda")
    (links / "254:1").symlink_to("../../devices/pci0000:00/virtio1/block/vda/vda1")
    return sysfs


def test_a_disk_is_itself(tmp_path: Path) -> None:
    assert whole_disk("254:0", fake_sysfs(tmp_path)) == "254:0"


def test_a_partition_maps_to_its_disk(tmp_path: Path) -> None:
    assert whole_disk("254:1", fake_sysfs(tmp_path)) == "254:0"


def test_anonymous_devices_have_no_disk(tmp_path: Path) -> None:
    assert whole_disk("0:45", fake_sysfs(tmp_path)) is None


def test_real_paths_resolve_to_whole_disks() -> None:
    # /proc is procfs (an anonymous device): it contributes nothing.
    assert block_devices_for(Path("/proc")) == ()
    found = block_devices_for(Path("/"), Path("/"), Path("/proc"))
    assert len(found) == len(set(found)) <= 1
    for dev in found:
        node = Path("/sys/dev/block") / dev
        assert node.exists()
        assert not (node / "partition").exists()
