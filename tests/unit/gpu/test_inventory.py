"""The inventories: static (config), procfs (parsers over a fake tree), and
NVML through a fake pynvml module; the fallback when NVML does not load."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from joblet.errors import ConfigError
from joblet.gpu import inventory
from joblet.gpu.config import GpuConfig, StaticInventoryConfig, parse_gpu_config
from joblet.gpu.model import DeviceNode, Gpu
from joblet.gpu.nvml import NvmlInventory, NvmlUnavailable, normal_bus_id
from joblet.gpu.procfs import ProcfsInventory, control_nodes, parse_proc_devices
from joblet.testing.fake_pynvml import FakeDevice, installed

PROC_DEVICES = """Character devices:
  1 mem
195 nvidia-frontend
236 nvidia-uvm
237 nvidia-nvswitch

Block devices:
236 nvidia-uvm-block-should-not-count
"""
INFO = """Model: \t\t NVIDIA H100 80GB HBM3
IRQ:   \t\t 42
GPU UUID: \t GPU-{n}
Bus Location: \t {bus}
Device Minor: \t {minor}
"""


def test_proc_devices_give_the_uvm_major_and_control_nodes() -> None:
    assert parse_proc_devices(PROC_DEVICES)["nvidia-uvm"] == 236
    assert control_nodes(PROC_DEVICES) == (
        DeviceNode("nvidiactl", 195, 255),
        DeviceNode("nvidia-uvm", 236, 0),
        DeviceNode("nvidia-uvm-tools", 236, 1),
    )
    assert control_nodes("Character devices:\n  1 mem\n") == (DeviceNode("nvidiactl", 195, 255),)


def test_procfs_lists_gpus_in_bus_order_with_their_minors(tmp_path: Path) -> None:
    gpus = tmp_path / "nvidia" / "gpus"
    for n, (bus, minor) in enumerate((("0000:b1:00.0", 0), ("0000:3b:00.0", 4))):
        (gpus / bus).mkdir(parents=True)
        (gpus / bus / "information").write_text(INFO.format(n=n, bus=bus, minor=minor))
    (tmp_path / "nvidia" / "version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5\n"
    )
    (tmp_path / "devices").write_text(PROC_DEVICES)
    host = ProcfsInventory(tmp_path / "nvidia", tmp_path / "devices").discover()
    assert [(g.index, g.bus_id, g.minor, g.uuid) for g in host.gpus] == [
        (0, "0000:3b:00.0", 4, "GPU-1"),
        (1, "0000:b1:00.0", 0, "GPU-0"),
    ]
    assert not host.memory_known and host.driver_version == "550.54.15"
    assert host.gpus[0].name == "NVIDIA H100 80GB HBM3"


def test_procfs_without_a_driver_lists_nothing(tmp_path: Path) -> None:
    host = ProcfsInventory(tmp_path / "none", tmp_path / "devices").discover()
    assert host.gpus == () and host.control == ()


def test_nvml_reads_minor_numbers_not_indices_and_marks_mig(tmp_path: Path) -> None:
    (tmp_path / "devices").write_text(PROC_DEVICES)
    devices = [
        FakeDevice("GPU-a", minor=7, bus_id="00000000:3B:00.0"),
        FakeDevice("GPU-b", minor=2, mig=1, unsupported=frozenset({"numa"})),
    ]
    with installed(devices):
        host = NvmlInventory(tmp_path / "devices").discover()
    first, second = host.gpus
    assert (first.index, first.minor, first.memory_mb, first.bus_id) == (
        0,
        7,
        81920,
        "0000:3b:00.0",
    )
    assert first.compute_capability == "9.0" and first.name == "Fake H100"
    assert second.mig and second.numa_node == -1
    assert host.topology == {frozenset((0, 1)): 10}
    assert host.driver_version == "550.54.15" and host.control[1].major == 236


def test_nvml_without_the_module_falls_back_to_procfs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    with pytest.raises(NvmlUnavailable, match="not installed"):
        NvmlInventory().discover()
    with caplog.at_level(logging.WARNING):
        host = inventory.discover(GpuConfig(enabled=True))
    assert host.source == "procfs" and "listing GPUs from /proc/driver/nvidia" in caplog.text


def test_disabled_gpus_discover_nothing_and_import_no_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "joblet.gpu.nvml", raising=False)
    host = inventory.discover(GpuConfig())
    assert host.source == "none" and host.gpus == ()
    assert "joblet.gpu.nvml" not in sys.modules and "pynvml" not in sys.modules


def test_static_inventory_reads_its_own_device_files(tmp_path: Path) -> None:
    (tmp_path / "devices").write_text(PROC_DEVICES)
    gpus = (Gpu(index=0, uuid="GPU-x", minor=9),)
    config = StaticInventoryConfig(str(tmp_path / "dev"), str(tmp_path / "devices"), "", gpus)
    host = inventory.StaticInventory(config).discover()
    assert host.gpus == gpus and host.device_root == str(tmp_path / "dev")
    assert [n.name for n in host.control] == ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"]


def test_bus_ids_are_written_as_procfs_names_them() -> None:
    assert normal_bus_id("00000000:3B:00.0") == "0000:3b:00.0"


def test_the_config_section_is_checked() -> None:
    config = parse_gpu_config(
        {"enabled": True, "inventory": "static", "strategy": "pack",
         "static": {"gpus": [{"index": 0, "uuid": "GPU-a", "memoryMb": 1000}]}}
    )  # fmt: skip
    assert config.static.gpus[0] == Gpu(index=0, uuid="GPU-a", memory_mb=1000, minor=0)
    for bad, words in (
        ({"inventory": "cuda"}, "gpu.inventory must be one of"),
        ({"strategy": "random"}, "gpu.strategy must be one of"),
        ({"enabled": "yes"}, "gpu.enabled must be true or false"),
        ({"static": {"gpus": [{"index": 0}]}}, "needs index and uuid"),
        ({"static": {"gpus": [{"index": 0, "uuid": "a", "colour": 1}]}}, "unknown keys"),
        ({"static": {"gpus": [{"index": 0, "uuid": "a"}, {"index": 0, "uuid": "b"}]}}, "index"),
        ({"static": {"gpus": [{"index": "x", "uuid": "a"}]}}, "must be an integer"),
    ):
        with pytest.raises(ConfigError, match=words):
            parse_gpu_config(bad)
