"""What /proc tells about NVIDIA GPUs: pure parsers and the procfs inventory,
the fallback when libnvidia-ml does not load. /proc/driver/nvidia has no
memory sizes, so this inventory cannot honour gpu_memory_mb."""

from __future__ import annotations

from pathlib import Path

from joblet.gpu.model import NVIDIA_MAJOR, NVIDIACTL_MINOR, DeviceNode, Gpu, GpuHost


def parse_proc_devices(text: str) -> dict[str, int]:
    """Character device names to majors, from /proc/devices."""
    majors: dict[str, int] = {}
    in_char = False
    for line in text.splitlines():
        if line.startswith("Character devices"):
            in_char = True
            continue
        if line.startswith("Block devices"):
            break
        parts = line.split()
        if in_char and len(parts) == 2 and parts[0].isdigit():
            majors.setdefault(parts[1], int(parts[0]))
    return majors


def control_nodes(proc_devices: str) -> tuple[DeviceNode, ...]:
    """nvidiactl (195:255) and, when the module is loaded, nvidia-uvm and
    nvidia-uvm-tools (minors 0 and 1 of a major the kernel picks at load)."""
    nodes = [DeviceNode("nvidiactl", NVIDIA_MAJOR, NVIDIACTL_MINOR)]
    uvm = parse_proc_devices(proc_devices).get("nvidia-uvm")
    if uvm is not None:
        nodes += [DeviceNode("nvidia-uvm", uvm, 0), DeviceNode("nvidia-uvm-tools", uvm, 1)]
    return tuple(nodes)


def parse_information(text: str) -> dict[str, str]:
    """The "Key: value" lines of /proc/driver/nvidia/gpus/<bus id>/information."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def gpus_from_proc(infos: dict[str, str]) -> tuple[Gpu, ...]:
    """GPUs from each bus id's information text. NVML enumerates by PCI bus
    order, so the index is the position in bus id order."""
    gpus = []
    for index, bus_id in enumerate(sorted(infos)):
        info = parse_information(infos[bus_id])
        minor = info.get("Device Minor", "")
        gpus.append(
            Gpu(
                index=index,
                uuid=info.get("GPU UUID", ""),
                name=info.get("Model", ""),
                minor=int(minor) if minor.isdigit() else index,
                bus_id=bus_id.lower(),
            )
        )
    return tuple(gpus)


def read_driver_version(driver_proc: Path) -> str:
    """The kernel module's version from /proc/driver/nvidia/version."""
    try:
        text = (driver_proc / "version").read_text()
    except OSError:
        return ""
    for word in text.split():
        if word.count(".") >= 1 and word.replace(".", "").isdigit():
            return word
    return ""


class ProcfsInventory:
    source = "procfs"

    def __init__(
        self,
        driver_proc: Path = Path("/proc/driver/nvidia"),
        proc_devices: Path = Path("/proc/devices"),
        device_root: str = "/dev",
    ) -> None:
        self._driver_proc = driver_proc
        self._proc_devices = proc_devices
        self._device_root = device_root

    def discover(self) -> GpuHost:
        infos: dict[str, str] = {}
        gpus_dir = self._driver_proc / "gpus"
        if gpus_dir.is_dir():
            for entry in gpus_dir.iterdir():
                try:
                    infos[entry.name] = (entry / "information").read_text()
                except OSError:
                    continue
        gpus = gpus_from_proc(infos)
        return GpuHost(
            gpus=gpus,
            control=control_nodes(_read(self._proc_devices)) if gpus else (),
            device_root=self._device_root,
            memory_known=False,
            source=self.source,
            driver_version=read_driver_version(self._driver_proc),
        )


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
