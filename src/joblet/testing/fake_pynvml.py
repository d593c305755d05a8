"""A stand-in for the `pynvml` module (nvidia-ml-py) with the calls joblet
makes, over a list of fake GPUs: tests install it in sys.modules."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


class NVMLError(Exception):
    pass


class NVMLErrorNotSupported(NVMLError):
    pass


@dataclass
class FakeDevice:
    uuid: str
    minor: int
    name: str = "Fake H100"
    memory_total: int = 80 * 1024**3
    memory_used: int = 0
    bus_id: str = "00000000:3B:00.0"
    capability: tuple[int, int] = (9, 0)
    mig: int = 0
    numa: int = 0
    utilization: tuple[int, int] = (0, 0)  # gpu, memory percent
    temperature: int = 40
    power_mw: int = 100_000
    power_limit_mw: int = 700_000
    processes: list[tuple[int, int]] = field(default_factory=list)  # (pid, used bytes)
    unsupported: frozenset[str] = frozenset()  # calls that raise NotSupported


class FakeEventSet:
    """XID events a test puts in (`device`, `xid`); waits take them in order."""

    def __init__(self) -> None:
        import queue

        self.events: queue.Queue[tuple[FakeDevice, int]] = queue.Queue()
        self.registered: list[FakeDevice] = []


def build(devices: list[FakeDevice], driver: str = "550.54.15") -> types.ModuleType:
    m = types.ModuleType("pynvml")
    m.events = FakeEventSet()  # type: ignore[attr-defined]

    def wait(event_set: FakeEventSet, timeout_ms: int) -> types.SimpleNamespace:
        import queue

        try:
            device, xid = event_set.events.get(timeout=timeout_ms / 1000)
        except queue.Empty:
            raise NVMLError("timeout") from None
        return types.SimpleNamespace(device=device, eventData=xid)

    def register(handle: FakeDevice, types_: int, event_set: FakeEventSet) -> None:
        dev("events", handle)
        event_set.registered.append(handle)

    m.NVMLError = NVMLError  # type: ignore[attr-defined]
    m.NVMLError_NotSupported = NVMLErrorNotSupported  # type: ignore[attr-defined]
    m.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM = 1, 2  # type: ignore[attr-defined]
    m.NVML_PCIE_UTIL_TX_BYTES, m.NVML_PCIE_UTIL_RX_BYTES = 0, 1  # type: ignore[attr-defined]

    def dev(name: str, handle: FakeDevice) -> FakeDevice:
        if name in handle.unsupported:
            raise NVMLErrorNotSupported(name)
        return handle

    def ns(**kw: Any) -> types.SimpleNamespace:
        return types.SimpleNamespace(**kw)

    calls: dict[str, Any] = {
        "nvmlEventSetCreate": lambda: m.events,
        "nvmlDeviceRegisterEvents": register,
        "nvmlEventSetWait_v2": wait,
        "nvmlEventSetFree": lambda s: None,
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: driver,
        "nvmlDeviceGetCount": lambda: len(devices),
        "nvmlDeviceGetHandleByIndex": lambda i: devices[i],
        "nvmlDeviceGetUUID": lambda h: dev("uuid", h).uuid,
        "nvmlDeviceGetName": lambda h: dev("name", h).name.encode(),  # old bindings: bytes
        "nvmlDeviceGetMinorNumber": lambda h: dev("minor", h).minor,
        "nvmlDeviceGetMemoryInfo": lambda h: ns(
            total=dev("memory", h).memory_total, used=h.memory_used,
            free=h.memory_total - h.memory_used,
        ),
        "nvmlDeviceGetPciInfo": lambda h: ns(busId=dev("pci", h).bus_id.encode()),
        "nvmlDeviceGetCudaComputeCapability": lambda h: dev("capability", h).capability,
        "nvmlDeviceGetMigMode": lambda h: (dev("mig", h).mig, h.mig),
        "nvmlDeviceGetNumaNodeId": lambda h: dev("numa", h).numa,
        "nvmlDeviceGetTopologyCommonAncestor": lambda a, b: 10 if abs(
            devices.index(a) - devices.index(b)) == 1 else 40,
        "nvmlDeviceGetUtilizationRates": lambda h: ns(
            gpu=dev("utilization", h).utilization[0], memory=h.utilization[1]
        ),
        "nvmlDeviceGetTemperature": lambda h, sensor: dev("temperature", h).temperature,
        "nvmlDeviceGetPowerUsage": lambda h: dev("power", h).power_mw,
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: dev("power_limit", h).power_limit_mw,
        "nvmlDeviceGetComputeRunningProcesses": lambda h: [
            ns(pid=pid, usedGpuMemory=used) for pid, used in dev("processes", h).processes
        ],
    }  # fmt: skip
    for name, call in calls.items():
        setattr(m, name, call)
    return m


@contextmanager
def installed(devices: list[FakeDevice]) -> Iterator[types.ModuleType]:
    """`import pynvml` gives the fake while the context is open."""
    module = build(devices)
    saved = sys.modules.get("pynvml")
    sys.modules["pynvml"] = module
    try:
        yield module
    finally:
        if saved is None:
            sys.modules.pop("pynvml", None)
        else:
            sys.modules["pynvml"] = saved
