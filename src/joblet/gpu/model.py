"""What the node knows about its GPUs and what a job asks for (pure data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

NVIDIA_MAJOR = 195  # /dev/nvidiaN and nvidiactl (Documentation/admin-guide/devices.txt)
NVIDIACTL_MINOR = 255


@dataclass(frozen=True)
class Gpu:
    index: int  # NVML's index (the host's enumeration order)
    uuid: str  # "GPU-..."
    name: str = ""
    memory_mb: int = 0  # 0: unknown (procfs inventory)
    minor: int = 0  # /dev/nvidia<minor>: nvmlDeviceGetMinorNumber, not the index
    bus_id: str = ""  # "0000:3b:00.0", its /proc/driver/nvidia/gpus/<bus id>
    compute_capability: str = ""  # "9.0"
    numa_node: int = -1
    mig: bool = False  # MIG mode on: listed, not allocatable as a whole GPU

    @property
    def node_name(self) -> str:
        return f"nvidia{self.minor}"

    def describe(self) -> str:
        memory = f"{self.memory_mb} MB" if self.memory_mb else "memory unknown"
        mig = ", MIG (not allocatable)" if self.mig else ""
        return f"{self.index}: {self.name or 'GPU'} ({memory}{mig})"


@dataclass(frozen=True)
class DeviceNode:
    """A character device a GPU job gets in its /dev, by its host path."""

    name: str  # its name under /dev: "nvidiactl", "nvidia-uvm"
    major: int
    minor: int


@dataclass(frozen=True)
class GpuHost:
    """One look at the node's GPUs."""

    gpus: tuple[Gpu, ...] = ()
    control: tuple[DeviceNode, ...] = ()  # nvidiactl, nvidia-uvm(-tools)
    device_root: str = "/dev"  # where the host's nodes are
    driver_proc: str = "/proc/driver/nvidia"  # the driver's /proc entry ("" = none)
    memory_known: bool = True  # False: procfs, which has no memory sizes
    source: str = "none"  # "nvml", "procfs", "static" or "none"
    driver_version: str = ""
    # Topology levels between GPU indices (NVML's nvmlGpuTopologyLevel_t:
    # lower is closer); pairs absent are taken as far apart.
    topology: Mapping[frozenset[int], int] = field(default_factory=dict)
    # The driver's user-space files GPU jobs get: (host real file, job path).
    driver_files: tuple[tuple[str, str], ...] = ()

    def by_index(self) -> dict[int, Gpu]:
        return {gpu.index: gpu for gpu in self.gpus}

    def describe(self) -> str:
        if not self.gpus:
            return "this node has no GPUs"
        return "this node has: " + "; ".join(gpu.describe() for gpu in self.gpus)


@dataclass(frozen=True)
class GpuRequest:
    """count GPUs of at least memory_mb MB each; `pins` names GPUs by index or UUID."""

    count: int = 0
    memory_mb: int = 0
    pins: tuple[str, ...] = ()

    @property
    def wanted(self) -> int:
        return self.count or len(self.pins)
