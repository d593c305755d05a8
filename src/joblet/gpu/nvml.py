"""The NVML inventory through nvidia-ml-py (module `pynvml`), imported only
when GPUs are enabled: hosts without GPUs never load it."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import ModuleType
from typing import Any

from joblet.gpu.model import Gpu, GpuHost
from joblet.gpu.procfs import control_nodes


class NvmlUnavailable(Exception):
    """libnvidia-ml (or the pynvml module) cannot be used here."""


def load_pynvml() -> ModuleType:
    """pynvml, initialised; NvmlUnavailable says why not."""
    try:
        import pynvml  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:
        raise NvmlUnavailable(f"the pynvml module (nvidia-ml-py) is not installed: {exc}") from exc
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # pynvml.NVMLError: libnvidia-ml missing, no driver
        raise NvmlUnavailable(f"NVML does not initialise: {exc}") from exc
    module: ModuleType = pynvml
    return module


def text(value: object) -> str:
    """NVML strings come as bytes from older bindings and str from newer ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


def normal_bus_id(bus_id: str) -> str:
    """NVML's "00000000:3B:00.0" as /proc/driver/nvidia/gpus names it: "0000:3b:00.0"."""
    domain, sep, rest = bus_id.partition(":")
    return f"{domain[-4:]}{sep}{rest}".lower() if sep else bus_id.lower()


def _optional(call: Any, *args: object, default: Any = None) -> Any:
    """An NVML query the GPU or driver may not support."""
    try:
        return call(*args)
    except Exception:  # NVMLError_NotSupported and kin
        return default


def describe_gpu(nvml: ModuleType, index: int) -> Gpu:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = _optional(nvml.nvmlDeviceGetMemoryInfo, handle)
    capability = _optional(nvml.nvmlDeviceGetCudaComputeCapability, handle)
    mig = _optional(nvml.nvmlDeviceGetMigMode, handle, default=(0, 0))
    pci = _optional(nvml.nvmlDeviceGetPciInfo, handle)
    numa = _optional(getattr(nvml, "nvmlDeviceGetNumaNodeId", None), handle, default=-1)
    return Gpu(
        index=index,
        uuid=text(nvml.nvmlDeviceGetUUID(handle)),
        name=text(_optional(nvml.nvmlDeviceGetName, handle, default="")),
        memory_mb=int(memory.total) // (1024 * 1024) if memory is not None else 0,
        minor=int(nvml.nvmlDeviceGetMinorNumber(handle)),
        bus_id=normal_bus_id(text(pci.busId)) if pci is not None else "",
        compute_capability=f"{capability[0]}.{capability[1]}" if capability else "",
        numa_node=int(numa) if numa is not None else -1,
        mig=bool(mig and mig[0] == 1),
    )


def topology(nvml: ModuleType, count: int) -> dict[frozenset[int], int]:
    levels: dict[frozenset[int], int] = {}
    for a, b in itertools.combinations(range(count), 2):
        level = _optional(
            nvml.nvmlDeviceGetTopologyCommonAncestor,
            nvml.nvmlDeviceGetHandleByIndex(a),
            nvml.nvmlDeviceGetHandleByIndex(b),
        )
        if level is not None:
            levels[frozenset((a, b))] = int(level)
    return levels


class NvmlInventory:
    source = "nvml"

    def __init__(
        self, proc_devices: Path = Path("/proc/devices"), device_root: str = "/dev"
    ) -> None:
        self._proc_devices = proc_devices
        self._device_root = device_root

    def discover(self) -> GpuHost:
        nvml = load_pynvml()
        try:
            count = int(nvml.nvmlDeviceGetCount())
            gpus = tuple(describe_gpu(nvml, i) for i in range(count))
            levels = topology(nvml, count)
            driver = text(_optional(nvml.nvmlSystemGetDriverVersion, default=""))
        except NvmlUnavailable:
            raise
        except Exception as exc:
            raise NvmlUnavailable(f"NVML query failed: {exc}") from exc
        finally:
            _optional(nvml.nvmlShutdown)
        try:
            proc_devices = self._proc_devices.read_text()
        except OSError:
            proc_devices = ""
        return GpuHost(
            gpus=gpus,
            control=control_nodes(proc_devices) if gpus else (),
            device_root=self._device_root,
            source=self.source,
            driver_version=driver,
            topology=levels,
        )
