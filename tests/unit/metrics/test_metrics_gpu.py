"""GPU samples from NVML (a fake pynvml module): the reading of one GPU, and
the sampler adding one JobGPUMetrics per allocated GPU to a real job's sample."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from test_metrics_sampler_kernel import spawn_in

from joblet.gpu.metrics import NvmlMetrics, read_gpu
from joblet.gpu.model import Gpu
from joblet.metrics.sampler import JobSampler
from joblet.resources.interface import CgroupManager, Limits
from joblet.testing.fake_pynvml import FakeDevice, build

GIB = 1024**3


def devices() -> list[FakeDevice]:
    return [
        FakeDevice("GPU-a", minor=3, memory_used=2 * GIB, utilization=(87, 40), temperature=61,
                   power_mw=350_500, processes=[(4242, GIB)]),
        FakeDevice("GPU-b", minor=5,
                   unsupported=frozenset({"power", "temperature", "utilization"})),
    ]  # fmt: skip


def test_one_gpu_reading_converts_units_and_keeps_the_jobs_processes() -> None:
    nvml = build(devices())
    gpu = Gpu(0, "GPU-a", name="Fake H100", compute_capability="9.0", minor=3)
    m = read_gpu(nvml, gpu, "550.54.15", pids=[4242, 1])
    assert (m.index, m.uuid, m.driverVersion, m.computeCapability) == (
        0,
        "GPU-a",
        "550.54.15",
        "9.0",
    )
    assert (m.utilization, m.memoryUsed, m.memoryTotal) == (87.0, 2 * GIB, 80 * GIB)
    assert m.memoryFree == 78 * GIB and m.memoryPercent == pytest.approx(2.5)
    assert m.temperature == 61.0 and m.powerDraw == pytest.approx(350.5)  # mW to W
    assert m.powerLimit == pytest.approx(700.0)
    assert (m.processesCount, m.processesMemory) == (1, GIB)
    others = read_gpu(nvml, gpu, "", pids=[1])
    assert (others.processesCount, others.processesMemory) == (0, 0)  # not the job's


def test_what_nvml_does_not_support_stays_zero() -> None:
    m = read_gpu(build(devices()), Gpu(1, "GPU-b", minor=5), "", pids=[])
    assert (m.utilization, m.temperature, m.powerDraw, m.smClock, m.fanSpeed) == (0, 0, 0, 0, 0)
    assert m.memoryTotal == 80 * GIB


@pytest.mark.privileged
def test_the_sampler_adds_each_allocated_gpu(cgroups: CgroupManager) -> None:
    group = cgroups.create(str(uuid.uuid4()), Limits())
    proc = spawn_in(group, "sleep", "30")
    try:
        fakes = devices()
        fakes[1].processes = [(proc.pid, 3 * GIB), (os.getpid(), GIB)]
        gpus = [Gpu(0, "GPU-a", minor=3), Gpu(1, "GPU-b", minor=5)]
        metrics = NvmlMetrics(build(fakes), gpus, "550")
        reader = metrics.reader((1,))
        sampler = JobSampler(
            group.job_id, group, Limits(), interval_s=1, publish=lambda s: None,
            gpu_indices=(1,), gpu_reader=reader,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while proc.pid not in group.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        sample = sampler.sample()
    finally:
        metrics.close()
        group.kill_all()
        proc.wait()
        group.remove()
    assert list(sample.gpuAllocation) == [1]
    (gpu,) = sample.gpu
    assert gpu.uuid == "GPU-b" and gpu.processesCount == 1 and gpu.processesMemory == 3 * GIB


def test_xid_errors_count_from_when_the_job_got_the_gpu() -> None:
    fakes = devices()
    nvml = build(fakes)
    gpus = [Gpu(0, "GPU-a", minor=3), Gpu(1, "GPU-b", minor=5)]
    metrics = NvmlMetrics(nvml, gpus, "550")
    try:
        nvml.events.events.put((fakes[0], 79))  # before the job: not its own
        deadline = time.monotonic() + 10
        while metrics.xids.counts[0] < 1:
            assert time.monotonic() < deadline, "the XID thread saw nothing"
            time.sleep(0.01)
        read = metrics.reader((0, 1))
        nvml.events.events.put((fakes[0], 48))
        nvml.events.events.put((fakes[0], 63))
        while metrics.xids.counts[0] < 3:
            assert time.monotonic() < deadline, "the XID thread saw too little"
            time.sleep(0.01)
        by_uuid = {m.uuid: m.xidErrors for m in read([])}
        assert by_uuid == {"GPU-a": 2, "GPU-b": 0}
    finally:
        metrics.close()
    assert not metrics.xids.running
