"""Loop-device pieces that need no kernel: the ioctl struct and sysfs parsing."""

from __future__ import annotations

import struct
from pathlib import Path

from joblet.volumes import loop


def test_loop_config_matches_the_kernel_layout() -> None:
    raw = loop.config_bytes(7, loop.LO_FLAGS_AUTOCLEAR | loop.LO_FLAGS_DIRECT_IO, "/r/image")
    assert len(raw) == 304  # sizeof(struct loop_config) on every 64-bit and 32-bit ABI
    fd, block_size = struct.unpack_from("=II", raw, 0)
    assert (fd, block_size) == (7, 0)
    flags = struct.unpack_from("=I", raw, 8 + 40 + 12)[0]  # loop_info64.lo_flags
    assert flags == 20
    assert raw[8 + 56 : 8 + 56 + 8] == b"/r/image"


def test_long_file_names_are_cut_to_fit() -> None:
    raw = loop.config_bytes(3, 0, "/" + "x" * 200)
    assert len(raw) == 304
    assert raw[8 + 56 + 63] == 0  # NUL-terminated


def _bind(sys_block: Path, device: str, backing: str) -> None:
    (sys_block / device / "loop").mkdir(parents=True)
    (sys_block / device / "loop" / "backing_file").write_text(backing + "\n")


def test_bindings_come_from_sysfs(tmp_path: Path) -> None:
    _bind(tmp_path, "loop0", "/root/volumes/a/image")
    _bind(tmp_path, "loop3", "/other/file (deleted)")
    (tmp_path / "loop1").mkdir()  # not bound: no loop/ directory
    (tmp_path / "vda").mkdir()
    assert loop.read_bindings(str(tmp_path)) == {
        "loop0": "/root/volumes/a/image",
        "loop3": "/other/file (deleted)",
    }


def test_leftovers_are_ours_and_unused() -> None:
    bindings = {
        "loop0": "/root/volumes/a/image",  # mounted: kept
        "loop1": "/root/volumes/gone/image (deleted)",  # ours, removed volume
        "loop2": "/root/volumes/a/image",  # a second binding of a's image: stale
        "loop3": "/root/volumes-other/x/image",  # another root that shares a prefix
        "loop4": "/var/lib/docker/disk.img",  # not ours
    }
    assert loop.leftovers(bindings, "/root/volumes/", {"loop0"}) == ["loop1", "loop2"]
    assert loop.backing_path("/a (deleted)") == "/a"
