"""The node's GPU allocation: the table, the FIFO of GPU jobs waiting for
GPUs, and the checks a GPU request meets at submission.

Pure bookkeeping over the table (no I/O): the job manager asks it at each
start and tells it each release, which happens in the job's cleanup once
its cgroup is empty.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable

from joblet.errors import FailedPrecondition, ResourceExhausted
from joblet.gpu.config import GpuConfig
from joblet.gpu.metrics import GpuReader, NvmlMetrics
from joblet.gpu.model import GpuHost, GpuRequest
from joblet.gpu.table import AllocationTable, Grant
from joblet.jobs.model import JobSpec

log = logging.getLogger(__name__)


def request_of(spec: JobSpec) -> GpuRequest:
    return GpuRequest(spec.gpu_count, spec.gpu_memory_mb, spec.gpu_ids)


def wants_gpus(spec: JobSpec) -> bool:
    return bool(spec.gpu_count or spec.gpu_ids)


class GpuAllocator:
    def __init__(self, host: GpuHost, config: GpuConfig, device_filter: str = "") -> None:
        self.host = host
        self.config = config
        self.device_filter = device_filter  # "v1", "bpf" or "" (none on this node)
        self.table = AllocationTable(host, sharing=config.sharing, strategy=config.strategy)
        self.metrics: NvmlMetrics | None = None  # GPU samples (NVML inventories only)
        self._waiting: deque[str] = deque()
        self._requests: dict[str, GpuRequest] = {}

    def check(self, spec: JobSpec) -> None:
        """Refuse at once a GPU request this node can never meet."""
        if not wants_gpus(spec):
            return
        req = request_of(spec)
        if not self.config.enabled:
            raise ResourceExhausted(
                f"the job asks for {req.wanted} GPU(s); "
                "this node has no GPUs (gpu.enabled is false)"
            )
        why = self.table.impossible(req)
        if why:
            raise ResourceExhausted(why)
        if not self.device_filter and not self.config.allow_without_device_filter:
            raise FailedPrecondition(
                "GPU jobs need a device filter (cgroup v1 devices controller or cgroup v2 "
                "BPF device programs), which this node cannot apply; "
                "gpu.allowWithoutDeviceFilter: true runs them without one"
            )

    def take(self, job_id: str, spec: JobSpec) -> Grant | None:
        """The job's GPUs, allocated now if it is first in line and they are
        free; None: it waits (in FIFO order among GPU jobs)."""
        held = self.table.grant(job_id)
        if held is not None:
            return held
        req = request_of(spec)
        self._requests[job_id] = req
        if self._waiting and self._waiting[0] != job_id:
            if job_id not in self._waiting:
                self._waiting.append(job_id)
            return None
        grant = self.table.allocate(job_id, req)
        if grant is None:
            if job_id not in self._waiting:
                self._waiting.append(job_id)
            return None
        self._forget_wait(job_id)
        return grant

    def ready(self) -> list[str]:
        """The waiting jobs that now have their GPUs, in FIFO order: a head
        that still cannot be met keeps everyone behind it waiting."""
        granted: list[str] = []
        while self._waiting:
            head = self._waiting[0]
            if self.table.allocate(head, self._requests[head]) is None:
                break
            self._forget_wait(head)
            granted.append(head)
        return granted

    def free_count(self) -> int:
        """GPUs no job holds, 0 while GPU jobs wait here (the next free ones
        are theirs): how many more a placed job may ask of this node now."""
        if not self.config.enabled or self._waiting:
            return 0
        return sum(1 for gpu in self.host.gpus if not self.table.holders(gpu.index))

    def position(self, job_id: str) -> int:
        """How many GPU jobs wait ahead of `job_id`."""
        return self._waiting.index(job_id) if job_id in self._waiting else 0

    def wait_reason(self, job_id: str) -> str:
        req = self._requests.get(job_id, GpuRequest())
        ahead = self.position(job_id)
        busy = sorted({i for g in self.table.grants().values() for i in g.indices})
        line = f", {ahead} GPU job(s) ahead" if ahead else ""
        return f"waiting for {req.wanted} GPU(s){line}; in use: {busy or 'none'}"

    def release(self, job_id: str) -> bool:
        """Free the job's GPUs (and its place in line); True when GPUs were freed."""
        self._forget_wait(job_id)
        return bool(self.table.release(job_id))

    def restore(self, job_id: str, indices: Iterable[int], spec: JobSpec) -> None:
        indices = tuple(indices)
        if indices:
            self.table.restore(job_id, indices, spec.gpu_memory_mb)

    def reader(self, indices: tuple[int, ...]) -> GpuReader | None:
        """What samples a job's GPUs, where NVML can."""
        return self.metrics.reader(indices) if self.metrics is not None and indices else None

    def breaches(self, live: Iterable[str]) -> list[str]:
        """Where "allocated GPUs = GPUs of live jobs" does not hold."""
        live = set(live)
        return [
            f"job {job} holds GPUs {grant.indices} but is not live"
            for job, grant in self.table.grants().items()
            if job not in live
        ]

    def _forget_wait(self, job_id: str) -> None:
        if job_id in self._waiting:
            self._waiting.remove(job_id)
        self._requests.pop(job_id, None)
