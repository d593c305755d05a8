"""One GpuInventory interface, chosen by config: nvml (falling back to procfs
when libnvidia-ml does not load), procfs, or static (a list in config; tests
inject it with their own device root and /proc/devices)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from joblet.gpu.config import GpuConfig, StaticInventoryConfig
from joblet.gpu.model import GpuHost
from joblet.gpu.procfs import ProcfsInventory, control_nodes, read_driver_version

log = logging.getLogger(__name__)


class GpuInventory(Protocol):
    source: str

    def discover(self) -> GpuHost: ...


class StaticInventory:
    source = "static"

    def __init__(self, config: StaticInventoryConfig) -> None:
        self._config = config

    def discover(self) -> GpuHost:
        c = self._config
        try:
            proc_devices = Path(c.proc_devices).read_text()
        except OSError:
            proc_devices = ""
        return GpuHost(
            gpus=c.gpus,
            control=control_nodes(proc_devices) if c.gpus else (),
            device_root=c.device_root,
            driver_proc=c.driver_proc,
            source=self.source,
            driver_version=read_driver_version(Path(c.driver_proc)) if c.driver_proc else "",
        )


def discover(config: GpuConfig) -> GpuHost:
    """The node's GPUs as `config` says to find them (none when disabled)."""
    if not config.enabled:
        return GpuHost(source="none")
    if config.inventory == "static":
        return StaticInventory(config.static).discover()
    if config.inventory == "procfs":
        return ProcfsInventory().discover()
    from joblet.gpu.nvml import NvmlInventory, NvmlUnavailable

    try:
        return NvmlInventory().discover()
    except NvmlUnavailable as exc:
        log.warning("GPUs: %s; listing GPUs from /proc/driver/nvidia (no memory sizes)", exc)
        return ProcfsInventory().discover()
