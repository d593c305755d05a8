"""A fake NVIDIA host for tests and benches: device nodes made with mknod in
a directory of our own, a /proc/devices of our own, and the `gpu:` config
section of a static inventory that names them. There is no driver behind
the nodes: an open the device rules allow fails with ENXIO, one they deny
with EPERM."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from joblet.gpu.model import NVIDIA_MAJOR, NVIDIACTL_MINOR

UVM_MAJOR = 235  # unused on the hosts we test on; real ones get a dynamic major
# (index, minor): minors differ from indices, as they may on real hosts.
FAKE_GPUS = ((0, 3), (1, 5))


def fake_uuid(index: int) -> str:
    return f"GPU-00000000-0000-0000-0000-00000000000{index}"


def make_fake_host(root: Path, gpus: tuple[tuple[int, int], ...] = FAKE_GPUS) -> dict[str, Any]:
    """Make the nodes and /proc/devices under `root`; the `gpu:` section."""
    dev = root / "dev"
    dev.mkdir(parents=True, exist_ok=True)
    nodes = {f"nvidia{minor}": (NVIDIA_MAJOR, minor) for _, minor in gpus}
    nodes |= {
        "nvidiactl": (NVIDIA_MAJOR, NVIDIACTL_MINOR),
        "nvidia-uvm": (UVM_MAJOR, 0),
        "nvidia-uvm-tools": (UVM_MAJOR, 1),
    }
    for name, (major, minor) in nodes.items():
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    devices = root / "devices"
    devices.write_text(
        f"Character devices:\n  1 mem\n{NVIDIA_MAJOR} nvidia-frontend\n"
        f"{UVM_MAJOR} nvidia-uvm\n\nBlock devices:\n  7 loop\n"
    )
    return {
        "enabled": True,
        "inventory": "static",
        "static": {
            "deviceRoot": str(dev),
            "procDevices": str(devices),
            "gpus": [
                {
                    "index": index,
                    "uuid": fake_uuid(index),
                    "name": "Fake H100",
                    "memoryMb": 81559,
                    "minor": minor,
                    "busId": f"0000:{0x3B + index:02x}:00.0",
                    "computeCapability": "9.0",
                }
                for index, minor in gpus
            ],
        },
    }


DRIVER_VERSION = "550.54.15"
# (library base, soname major) of the fake driver's libraries.
DRIVER_LIBS = (("libcuda", "1"), ("libnvidia-ml", "1"), ("libnvidia-ptxjitcompiler", "1"))


def make_driver_tree(root: Path) -> Path:
    """A fake driver's user-space files as an install leaves them: the real
    files, their soname and dev links, a library not of the driver and an
    executable `nvidia-smi` that says it is the fake one."""
    root.mkdir(parents=True)
    for base, major in DRIVER_LIBS:
        (root / f"{base}.so.{DRIVER_VERSION}").write_bytes(b"\x7fELF fake " + base.encode())
        (root / f"{base}.so.{major}").symlink_to(f"{base}.so.{DRIVER_VERSION}")
        (root / f"{base}.so").symlink_to(f"{base}.so.{major}")
    (root / "libunrelated.so.1").write_bytes(b"not the driver's")
    smi = root / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "fake nvidia-smi $*"\n')
    smi.chmod(0o755)
    return root
