"""GPU samples from NVML: one JobGPUMetrics per allocated GPU.

What NVML does not support on a GPU (or the driver) stays 0. Processes come
from nvmlDeviceGetComputeRunningProcesses, kept to the job's own pids (a
shared GPU runs other jobs' processes too). XID errors are counted by one
thread waiting on an NVML event set; a job's xidErrors are those seen since
it got the GPU.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.gpu.model import Gpu

log = logging.getLogger(__name__)
MIB = 1024 * 1024
# nvmlComputeMode_t
COMPUTE_MODES = {0: "Default", 1: "Exclusive_Thread", 2: "Prohibited", 3: "Exclusive_Process"}
NVML_FI_DEV_MEMORY_TEMP = 82  # nvml.h: the HBM temperature field
GpuReader = Callable[[Sequence[int]], list[pb.JobGPUMetrics]]
XID_CRITICAL = 0x0000000000000008  # nvmlEventTypeXidCriticalError
XID_WAIT_MS = 500  # how long a wait blocks: the longest a close waits for the thread


def _get(nvml: ModuleType, name: str, *args: object, default: Any = None) -> Any:
    call = getattr(nvml, name, None)
    if call is None:
        return default
    try:
        return call(*args)
    except Exception:  # NVMLError_NotSupported, NoPermission, ...
        return default


def read_gpu(nvml: ModuleType, gpu: Gpu, driver: str, pids: Sequence[int]) -> pb.JobGPUMetrics:
    """One GPU's reading; `pids` are the job's (host pids)."""
    h = nvml.nvmlDeviceGetHandleByIndex(gpu.index)
    m = pb.JobGPUMetrics(
        index=gpu.index, uuid=gpu.uuid, name=gpu.name,
        computeCapability=gpu.compute_capability, driverVersion=driver,
    )  # fmt: skip
    util = _get(nvml, "nvmlDeviceGetUtilizationRates", h)
    if util is not None:
        m.utilization = float(util.gpu)
    memory = _get(nvml, "nvmlDeviceGetMemoryInfo", h)
    if memory is not None:
        m.memoryUsed, m.memoryTotal, m.memoryFree = memory.used, memory.total, memory.free
        m.memoryPercent = 100.0 * memory.used / memory.total if memory.total else 0.0
    for field, call in (("encoderUtil", "nvmlDeviceGetEncoderUtilization"),
                        ("decoderUtil", "nvmlDeviceGetDecoderUtilization")):  # fmt: skip
        value = _get(nvml, call, h)
        if value is not None:
            setattr(m, field, float(value[0]))
    m.smClock = _get(
        nvml, "nvmlDeviceGetClockInfo", h, getattr(nvml, "NVML_CLOCK_SM", 1), default=0
    )
    m.memoryClock = _get(
        nvml, "nvmlDeviceGetClockInfo", h, getattr(nvml, "NVML_CLOCK_MEM", 2), default=0
    )
    for field, counter in (("pcieThroughputTx", "NVML_PCIE_UTIL_TX_BYTES"),
                           ("pcieThroughputRx", "NVML_PCIE_UTIL_RX_BYTES")):  # fmt: skip
        kbs = _get(nvml, "nvmlDeviceGetPcieThroughput", h, getattr(nvml, counter, 0), default=0)
        setattr(m, field, float(kbs) * 1024)  # KB/s to bytes/s
    m.temperature = float(_get(nvml, "nvmlDeviceGetTemperature", h, 0, default=0))
    m.temperatureMemory = _memory_temperature(nvml, h)
    m.powerDraw = _get(nvml, "nvmlDeviceGetPowerUsage", h, default=0) / 1000.0  # mW to W
    m.powerLimit = _get(nvml, "nvmlDeviceGetEnforcedPowerLimit", h, default=0) / 1000.0
    m.fanSpeed = float(_get(nvml, "nvmlDeviceGetFanSpeed", h, default=0))
    m.eccErrorsSingle = _get(nvml, "nvmlDeviceGetTotalEccErrors", h, 0, 1, default=0)
    m.eccErrorsDouble = _get(nvml, "nvmlDeviceGetTotalEccErrors", h, 1, 1, default=0)
    m.retiredPages = _retired(nvml, h)
    m.throttleReasons = _get(
        nvml, "nvmlDeviceGetCurrentClocksEventReasons", h, default=None
    ) or _get(nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", h, default=0)
    mode = _get(nvml, "nvmlDeviceGetComputeMode", h)
    m.computeMode = COMPUTE_MODES.get(mode, "") if mode is not None else ""
    own = set(pids)
    procs = [p for p in _get(nvml, "nvmlDeviceGetComputeRunningProcesses", h, default=[]) or []
             if p.pid in own]  # fmt: skip
    m.processesCount = len(procs)
    m.processesMemory = sum(int(p.usedGpuMemory or 0) for p in procs)
    return m


def _memory_temperature(nvml: ModuleType, handle: object) -> float:
    values = _get(nvml, "nvmlDeviceGetFieldValues", handle, [NVML_FI_DEV_MEMORY_TEMP])
    if not values or getattr(values[0], "nvmlReturn", 1) != 0:
        return 0.0
    value = values[0].value
    return float(getattr(value, "uiVal", 0) or getattr(value, "ullVal", 0))


def _retired(nvml: ModuleType, handle: object) -> int:
    """Retired pages (before Ampere) or remapped rows (Ampere and later)."""
    pages = 0
    for cause in (0, 1):  # multiple single-bit, double-bit
        pages += len(_get(nvml, "nvmlDeviceGetRetiredPages", handle, cause, default=[]) or [])
    if pages:
        return pages
    rows = _get(nvml, "nvmlDeviceGetRemappedRows", handle)
    return int(rows[0]) + int(rows[1]) if rows else 0


class XidCounter:
    """Counts XID errors per GPU index from an NVML event set, in a thread
    that `close` ends. Where NVML has no events, nothing is counted."""

    def __init__(self, nvml: ModuleType, gpus: Sequence[Gpu]) -> None:
        self._nvml = nvml
        self.counts: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._set = _get(nvml, "nvmlEventSetCreate")
        if self._set is None:
            return
        # Events name their GPU by a handle: matched by UUID, handles are
        # new objects at every call.
        by_uuid = {}
        for gpu in gpus:
            handle = nvml.nvmlDeviceGetHandleByIndex(gpu.index)
            if _get(nvml, "nvmlDeviceRegisterEvents", handle, XID_CRITICAL, self._set, default=1):
                continue  # not supported on this GPU
            by_uuid[gpu.uuid] = gpu.index
        self._by_uuid = by_uuid
        if by_uuid:
            self._thread = threading.Thread(target=self._run, name="gpu-xid", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._nvml.nvmlEventSetWait_v2(self._set, XID_WAIT_MS)
            except Exception:  # NVMLError_Timeout: nothing happened meanwhile
                continue
            uuid = _get(self._nvml, "nvmlDeviceGetUUID", data.device, default="")
            index = self._by_uuid.get(uuid.decode() if isinstance(uuid, bytes) else uuid)
            if index is not None:
                self.counts[index] += 1
                log.warning("GPU %d: XID error %s", index, data.eventData)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._set is not None:
            _get(self._nvml, "nvmlEventSetFree", self._set)


class NvmlMetrics:
    """GPU readings for jobs, from one NVML session the daemon holds."""

    def __init__(self, nvml: ModuleType, gpus: Sequence[Gpu], driver: str) -> None:
        self._nvml = nvml
        self._gpus = {g.index: g for g in gpus}
        self._driver = driver
        self.xids = XidCounter(nvml, gpus)

    def reader(self, indices: Sequence[int]) -> GpuReader:
        """A job's reader; its XID count starts now, when it got the GPUs."""
        gpus = [self._gpus[i] for i in indices if i in self._gpus]
        since = {gpu.index: self.xids.counts[gpu.index] for gpu in gpus}

        def read(pids: Sequence[int]) -> list[pb.JobGPUMetrics]:
            out = []
            for gpu in gpus:
                try:
                    m = read_gpu(self._nvml, gpu, self._driver, pids)
                except Exception as exc:  # a GPU that fell off the bus: a sample without it
                    log.warning("GPU %d: NVML reading failed: %s", gpu.index, exc)
                    continue
                m.xidErrors = self.xids.counts[gpu.index] - since[gpu.index]
                out.append(m)
            return out

        return read

    def close(self) -> None:
        self.xids.close()
