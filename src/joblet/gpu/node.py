"""The node's GPUs at daemon start: discovered once, with the allocator the
job manager uses and what the start log says about them."""

from __future__ import annotations

import logging
from dataclasses import replace

from joblet.gpu.allocator import GpuAllocator
from joblet.gpu.config import GpuConfig
from joblet.gpu.driver_files import JOB_DIR, find_driver_files
from joblet.gpu.inventory import discover
from joblet.gpu.metrics import NvmlMetrics
from joblet.gpu.model import GpuHost

log = logging.getLogger(__name__)


def open_gpus(config: GpuConfig, device_filter: str, filter_problem: str = "") -> GpuAllocator:
    """Discover the GPUs (none when disabled) and log what GPU jobs will get."""
    host = discover(config)
    if config.enabled and host.gpus:
        files = find_driver_files(config.driver_paths)
        host = replace(host, driver_files=tuple((f.source, f.target) for f in files))
        log.info("GPU jobs get %d driver file(s) under %s", len(files), JOB_DIR)
    allocator = GpuAllocator(host, config, device_filter)
    if not config.enabled:
        return allocator
    log.info("GPUs (%s): %s", host.source, host.describe())
    if host.source == "nvml" and host.gpus:
        allocator.metrics = _nvml_metrics(host)
    if host.gpus and not device_filter:
        _warn_no_filter(config, filter_problem)
    return allocator


def _warn_no_filter(config: GpuConfig, problem: str) -> None:
    why = f" ({problem})" if problem else ""
    if config.allow_without_device_filter:
        log.warning(
            "WARNING: no device filter can apply on this node%s; "
            "gpu.allowWithoutDeviceFilter is true, so GPU jobs run WITHOUT device "
            "isolation: a job that can create device nodes can reach every GPU",
            why,
        )
    else:
        log.warning("no device filter can apply on this node%s: GPU jobs are refused", why)


def _nvml_metrics(host: GpuHost) -> NvmlMetrics | None:
    from joblet.gpu.nvml import NvmlUnavailable, load_pynvml

    try:
        return NvmlMetrics(load_pynvml(), host.gpus, host.driver_version)
    except NvmlUnavailable as exc:
        log.warning("GPU metrics are off: %s", exc)
        return None
