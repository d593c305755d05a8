"""The allocator: checks at submission and the FIFO of GPU jobs (pure)."""

from __future__ import annotations

import pytest

from joblet.errors import FailedPrecondition, ResourceExhausted
from joblet.gpu.allocator import GpuAllocator
from joblet.gpu.config import GpuConfig
from joblet.gpu.job_setup import gpu_job_setup
from joblet.gpu.model import DeviceNode, Gpu, GpuHost
from joblet.jobs.model import JobSpec

HOST = GpuHost(
    gpus=(Gpu(0, "GPU-a", memory_mb=40_000, minor=4), Gpu(1, "GPU-b", memory_mb=80_000, minor=6)),
    control=(DeviceNode("nvidiactl", 195, 255), DeviceNode("nvidia-uvm", 236, 0)),
    device_root="/fake/dev",
    source="static",
)
ON = GpuConfig(enabled=True, inventory="static")


def spec(count: int = 0, memory: int = 0, ids: tuple[str, ...] = ()) -> JobSpec:
    return JobSpec(command="x", gpu_count=count, gpu_memory_mb=memory, gpu_ids=ids)


def test_disabled_gpus_refuse_any_gpu_request_saying_so() -> None:
    allocator = GpuAllocator(HOST, GpuConfig(enabled=False), "v1")
    with pytest.raises(ResourceExhausted, match="this node has no GPUs"):
        allocator.check(spec(1))
    allocator.check(spec())  # jobs without GPUs are not its business


def test_without_a_device_filter_gpu_jobs_are_refused_unless_allowed() -> None:
    with pytest.raises(FailedPrecondition, match="allowWithoutDeviceFilter"):
        GpuAllocator(HOST, ON, "").check(spec(1))
    allowed = GpuConfig(enabled=True, allow_without_device_filter=True)
    GpuAllocator(HOST, allowed, "").check(spec(1))


def test_gpu_jobs_wait_first_in_first_out() -> None:
    allocator = GpuAllocator(HOST, ON, "v1")
    assert allocator.take("a", spec(1)) is not None
    assert allocator.take("big", spec(2)) is None  # one GPU free: it waits
    # A later one-GPU job would fit, but it must not overtake the waiting one.
    assert allocator.take("small", spec(1)) is None
    assert allocator.position("small") == 1
    assert "1 GPU job(s) ahead" in allocator.wait_reason("small")
    assert allocator.release("a")
    assert allocator.ready() == ["big"]
    assert allocator.table.grant("big") is not None
    assert allocator.release("big")
    assert allocator.ready() == ["small"]


def test_a_canceled_waiting_job_leaves_the_line() -> None:
    allocator = GpuAllocator(HOST, ON, "v1")
    allocator.take("a", spec(2))
    allocator.take("b", spec(1))
    assert not allocator.release("b")  # it held nothing
    assert allocator.position("b") == 0
    allocator.release("a")
    assert allocator.ready() == []


def test_breaches_name_jobs_that_hold_gpus_but_are_not_live() -> None:
    allocator = GpuAllocator(HOST, ON, "v1")
    allocator.take("a", spec(1))
    assert allocator.breaches(["a"]) == []
    assert allocator.breaches([]) == ["job a holds GPUs (0,) but is not live"]


def test_a_gpu_job_gets_its_nodes_rules_and_uuids() -> None:
    setup = gpu_job_setup(HOST, [1])
    assert setup.devices == (
        ("/fake/dev/nvidia6", "nvidia6"),
        ("/fake/dev/nvidiactl", "nvidiactl"),
        ("/fake/dev/nvidia-uvm", "nvidia-uvm"),
    )
    assert [r.v1_line() for r in setup.rules] == ["c 195:6 rwm", "c 195:255 rwm", "c 236:0 rwm"]
    assert dict(setup.env) == {
        "CUDA_VISIBLE_DEVICES": "GPU-b",
        "NVIDIA_VISIBLE_DEVICES": "GPU-b",
        "JOBLET_GPU_INDICES": "1",
    }
    assert gpu_job_setup(HOST, []).devices == ()
