"""What a GPU job is given (pure): the device rules of its GPUs and the
control devices, the nodes bound into its /dev, and its environment.

The environment is a hint for CUDA and NVML; the device rules enforce.
CUDA accepts UUIDs in CUDA_VISIBLE_DEVICES, and host indices would be wrong
inside the job, where its first GPU enumerates as 0.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from joblet.gpu.driver_files import driver_env
from joblet.gpu.model import NVIDIA_MAJOR, GpuHost
from joblet.resources.device_rules import DeviceRule, char


@dataclass(frozen=True)
class GpuJobSetup:
    rules: tuple[DeviceRule, ...] = ()
    devices: tuple[tuple[str, str], ...] = ()  # (host node, name under the job's /dev)
    env: tuple[tuple[str, str], ...] = ()
    bus_ids: tuple[str, ...] = ()  # the GPUs' /proc/driver/nvidia/gpus entries
    driver_proc: str = ""  # the host's /proc/driver/nvidia
    driver_files: tuple[tuple[str, str], ...] = ()  # (host file, job path)

    def job_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """The job's environment with the GPU variables, and the driver's
        directories in LD_LIBRARY_PATH and PATH where it has driver files."""
        return driver_env({**env, **dict(self.env)}, self.driver_files)


def gpu_job_setup(host: GpuHost, indices: Sequence[int]) -> GpuJobSetup:
    if not indices:
        return GpuJobSetup()
    by_index = host.by_index()
    gpus = [by_index[i] for i in indices if i in by_index]
    rules = [char(NVIDIA_MAJOR, g.minor) for g in gpus]
    rules += [char(node.major, node.minor) for node in host.control]
    names = [g.node_name for g in gpus] + [node.name for node in host.control]
    uuids = ",".join(g.uuid for g in gpus)
    return GpuJobSetup(
        rules=tuple(rules),
        devices=tuple((os.path.join(host.device_root, name), name) for name in names),
        env=(
            ("CUDA_VISIBLE_DEVICES", uuids),
            ("NVIDIA_VISIBLE_DEVICES", uuids),
            ("JOBLET_GPU_INDICES", ",".join(str(g.index) for g in gpus)),
        ),
        bus_ids=tuple(g.bus_id for g in gpus if g.bus_id),
        driver_proc=host.driver_proc,
        driver_files=host.driver_files,
    )
