"""A GPU job's /proc/driver/nvidia: a tmpfs with copies of the driver's
params (ModifyDeviceFiles: 0), version and registry, and read-only binds of
only the job's GPUs' gpus/<bus id> entries, as NVIDIA's container library
builds it. NVML in the job then enumerates the job's GPUs only, and the
driver's user-space never tries to make device nodes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from joblet.isolation import libc

if TYPE_CHECKING:
    from joblet.isolation.rootfs import _Planner

TARGET = "/proc/driver/nvidia"
FILES = ("params", "version", "registry")
_FLAGS = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
_RO = libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV
_RO |= libc.MOUNT_ATTR_NOEXEC


@dataclass(frozen=True)
class DriverProc:
    files: tuple[tuple[str, bytes], ...]  # (name, content)
    gpus: tuple[tuple[str, str], ...]  # (host gpus/<bus id> directory, bus id)


def without_device_files(params: str) -> str:
    """The driver's params with ModifyDeviceFiles: 0 (the job's /dev is made for it)."""
    line = "ModifyDeviceFiles: 0"
    if re.search(r"^ModifyDeviceFiles:.*$", params, flags=re.M):
        return re.sub(r"^ModifyDeviceFiles:.*$", line, params, flags=re.M)
    return params + ("" if params.endswith("\n") or not params else "\n") + line + "\n"


def read_driver_proc(
    source: str, bus_ids: Sequence[str], target: str = TARGET
) -> DriverProc | None:
    """What the job's /proc/driver/nvidia gets from the host's `source`; None
    where the job's /proc has no such entry (no driver loaded: nothing to hide)."""
    if not source or not bus_ids or not os.path.isdir(target):
        return None
    files = []
    for name in FILES:
        try:
            with open(os.path.join(source, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        if name == "params":
            data = without_device_files(data.decode(errors="replace")).encode()
        files.append((name, data))
    gpus = tuple(
        (os.path.join(source, "gpus", bus), bus)
        for bus in bus_ids
        if os.path.isdir(os.path.join(source, "gpus", bus))
    )
    return DriverProc(tuple(files), gpus)


def plan_driver_proc(p: _Planner, proc: DriverProc) -> None:
    """Ops that cover the job's /proc/driver/nvidia (a read-only bind of the
    kernel's, in the shared part of the plan) with the job's own view."""
    from joblet.isolation.rootfs import MakeDir, Mount, Protect, WriteFile

    target = p.target(TARGET)
    p.ops.append(Mount("tmpfs", target, "tmpfs", _FLAGS, "mode=0555,size=1m"))
    for name, data in proc.files:
        p.ops.append(WriteFile(f"{target}/{name}", data))
    p.ops.append(MakeDir(f"{target}/gpus"))
    for source, bus in proc.gpus:
        if "/" in bus or bus in ("", ".", ".."):
            raise ValueError(f"invalid bus id {bus!r}")
        p.ops.append(MakeDir(f"{target}/gpus/{bus}"))
        p.ops.append(Mount(source, f"{target}/gpus/{bus}", None, libc.MS_BIND | libc.MS_REC))
    p.ops.append(Protect(target, _RO))
