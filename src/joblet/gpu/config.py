"""The `gpu:` section of the daemon config (camelCase keys).

gpu:
  enabled: false                  # off: a GPU request fails (the node has none)
  inventory: nvml                 # nvml (procfs when libnvidia-ml does not load), procfs, static
  strategy: first-fit             # first-fit, best-fit, pack, spread
  sharing: false                  # jobs declaring gpu_memory_mb may share a GPU
  allowWithoutDeviceFilter: false # run GPU jobs where no device filter can apply
  driverPaths: []                 # directories of the driver's libraries and nvidia-smi
                                  # ([] = ldconfig's cache and the usual bin directories)
  static:                         # the inventory `static` reads (tests, fixed hosts)
    deviceRoot: /dev              # where its /dev/nvidia* nodes are
    procDevices: /proc/devices    # where the nvidia-uvm major is read
    driverProc: ""                # its /proc/driver/nvidia ("" = none)
    gpus: [{index: 0, uuid: GPU-..., name: ..., memoryMb: 81559, minor: 0,
            busId: "0000:3b:00.0", computeCapability: "9.0", numaNode: 0, mig: false}]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from joblet.config.keys import Schema, unknown_keys
from joblet.errors import ConfigError
from joblet.gpu.model import Gpu
from joblet.gpu.strategies import STRATEGIES

INVENTORIES = ("nvml", "procfs", "static")
GPU_KEYS = {
    "index": "index", "uuid": "uuid", "name": "name", "memoryMb": "memory_mb",
    "minor": "minor", "busId": "bus_id", "computeCapability": "compute_capability",
    "numaNode": "numa_node", "mig": "mig",
}  # fmt: skip
# `gpus` is a list: its items' keys are checked by _gpu, listed here for the docs.
STATIC_KEYS: Schema = dict.fromkeys(("deviceRoot", "procDevices", "driverProc")) | {
    "gpus": dict.fromkeys(GPU_KEYS)
}
KEYS: Schema = dict.fromkeys(
    ("enabled", "inventory", "strategy", "sharing", "allowWithoutDeviceFilter", "driverPaths")
) | {"static": STATIC_KEYS}


@dataclass(frozen=True)
class StaticInventoryConfig:
    device_root: str = "/dev"
    proc_devices: str = "/proc/devices"
    driver_proc: str = ""
    gpus: tuple[Gpu, ...] = ()


@dataclass(frozen=True)
class GpuConfig:
    enabled: bool = False
    inventory: str = "nvml"
    strategy: str = "first-fit"
    sharing: bool = False
    allow_without_device_filter: bool = False
    static: StaticInventoryConfig = StaticInventoryConfig()
    driver_paths: tuple[str, ...] = ()


def parse_gpu_config(section: Mapping[str, object] | None) -> GpuConfig:
    """The `gpu:` mapping (None: all defaults); raises ConfigError."""
    data = dict(section or {})
    problems = unknown_keys(data, KEYS, "gpu")
    if problems:
        raise ConfigError("; ".join(problems))
    inventory = str(data.get("inventory", "nvml"))
    if inventory not in INVENTORIES:
        raise ConfigError(
            f"gpu.inventory must be one of {', '.join(INVENTORIES)}, not {inventory!r}"
        )
    strategy = str(data.get("strategy", "first-fit"))
    if strategy not in STRATEGIES:
        raise ConfigError(f"gpu.strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    return GpuConfig(
        enabled=_bool(data, "enabled"),
        inventory=inventory,
        strategy=strategy,
        sharing=_bool(data, "sharing"),
        allow_without_device_filter=_bool(data, "allowWithoutDeviceFilter"),
        static=_static(data.get("static")),
        driver_paths=_driver_paths(data.get("driverPaths")),
    )


def _driver_paths(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise ConfigError("gpu.driverPaths must be a list of directories")
    for path in raw:
        if not path.startswith("/"):
            raise ConfigError(f"gpu.driverPaths: {path!r} is not an absolute path")
    return tuple(raw)


def _bool(data: Mapping[str, object], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"gpu.{key} must be true or false")
    return value


def _static(raw: object) -> StaticInventoryConfig:
    if raw is None:
        return StaticInventoryConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("gpu.static must be a mapping")
    gpus = raw.get("gpus", []) or []
    if not isinstance(gpus, list):
        raise ConfigError("gpu.static.gpus must be a list")
    parsed = tuple(_gpu(item, n) for n, item in enumerate(gpus))
    for what in ("index", "uuid", "minor"):
        values = [getattr(g, what) for g in parsed]
        if len(set(values)) != len(values):
            raise ConfigError(f"gpu.static.gpus: two GPUs share one {what}")
    return StaticInventoryConfig(
        device_root=str(raw.get("deviceRoot", "/dev")),
        proc_devices=str(raw.get("procDevices", "/proc/devices")),
        driver_proc=str(raw.get("driverProc", "") or ""),
        gpus=parsed,
    )


def _gpu(item: object, n: int) -> Gpu:
    where = f"gpu.static.gpus[{n}]"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    unknown = sorted(set(map(str, item)) - GPU_KEYS.keys())
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} (known: {', '.join(GPU_KEYS)})")
    if "uuid" not in item or "index" not in item:
        raise ConfigError(f"{where} needs index and uuid")
    values = {GPU_KEYS[key]: value for key, value in item.items()}
    values.setdefault("minor", values["index"])
    try:
        gpu = Gpu(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    for name in ("index", "memory_mb", "minor", "numa_node"):
        value = getattr(gpu, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}.{name} must be an integer")
    return gpu
