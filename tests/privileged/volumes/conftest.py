"""Real loop devices, ext4 and tmpfs under a temporary root, torn down even
when a test fails: every mount under the root is unmounted and every loop
device backed by a file under it is detached."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.isolation import libc
from joblet.volumes import loop
from joblet.volumes.config import VolumesConfig
from joblet.volumes.manager import VolumeManager


@pytest.fixture(scope="session")
def loop_capable() -> None:
    if os.geteuid() != 0:
        pytest.skip("volume tests need root (loop devices, mounts)")
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no /dev/loop-control: the loop driver is not available here")
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 missing (Debian package e2fsprogs)")


def mounts_under(root: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == root or p.startswith(root + "/")]


def cleanup(root: str) -> None:
    for point in sorted(mounts_under(root), key=len, reverse=True):
        with contextlib.suppress(OSError):
            libc.umount2(point, libc.MNT_DETACH)
    for device in loop.leftovers(loop.read_bindings(), root, set()):
        with contextlib.suppress(OSError):
            loop.detach(f"/dev/{device}")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def vroot(loop_capable: None) -> Iterator[Path]:
    """ROOT/volumes of a throwaway daemon root (realpath: sysfs shows real paths)."""
    base = os.path.realpath(tempfile.mkdtemp(prefix="joblet-vol-"))
    try:
        yield Path(base) / "volumes"
    finally:
        cleanup(base)


@pytest.fixture
def manager(vroot: Path) -> VolumeManager:
    return VolumeManager(vroot, VolumesConfig(max_size_bytes=2 * 1024**3, max_count=10))


def losetup_bind(path: Path) -> str:
    """A binding without autoclear, as a crashed run would leave it."""
    done = subprocess.run(
        ["losetup", "--find", "--show", str(path)], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()
