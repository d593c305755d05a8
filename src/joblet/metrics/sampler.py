"""JobSampler: samples one running job every interval and publishes each
sample; `final_sample()` takes the last one when the job ends, so even a job
shorter than one interval has its CPU time and peak memory recorded.

Reading happens in a worker thread (cgroupfs reads can stall under memory
pressure, and the event loop serves every client meanwhile).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

from joblet.api import joblet_pb2 as pb
from joblet.gpu.metrics import GpuReader
from joblet.metrics.compute import SampleContext, build_sample
from joblet.metrics.reader import cgroup_files, cgroup_path, read_snapshot
from joblet.metrics.snapshot import CgroupReading, Snapshot, with_final_network
from joblet.resources.interface import JobCgroup, Limits

Publish = Callable[[pb.JobMetricsSample], None]


class JobSampler:
    def __init__(
        self,
        job_id: str,
        cgroup: JobCgroup,
        limits: Limits,
        *,
        interval_s: float,
        publish: Publish,
        init_pid: int | None = None,
        procfs: Path = Path("/proc"),
        fresh: bool = False,
        gpu_indices: tuple[int, ...] = (),
        gpu_reader: GpuReader | None = None,
    ) -> None:
        """`fresh`: the cgroup was made for a job starting now, so its counters
        are all zero and the baseline needs no reading."""
        self.job_id = job_id
        self.interval_s = interval_s
        self._gpu_indices = gpu_indices
        self._gpu_reader = gpu_reader
        self._cgroup = cgroup
        self._files = cgroup_files(cgroup)
        self._init_pid = init_pid
        self._procfs = procfs
        self._publish = publish
        self._context = SampleContext(
            job_id, max(1, round(interval_s)), cgroup_path(cgroup), limits
        )
        # A fresh group's baseline is known without reading it; not reading
        # it keeps a thread hop and a dozen file reads off a job's start.
        self._previous: Snapshot | None = (
            Snapshot(time.time_ns(), time.monotonic_ns(), CgroupReading()) if fresh else None
        )
        self._lock = threading.Lock()  # the loop's thread and final_sample's may overlap
        self._task: asyncio.Task[None] | None = None
        self._final: pb.JobMetricsSample | None = None

    def sample(self, *, final: bool = False) -> pb.JobMetricsSample:
        """Read the job now and compute rates against the previous reading (blocking)."""
        with self._lock:
            current = read_snapshot(self._cgroup, self._init_pid, self._procfs, self._files)
            if final:
                current = with_final_network(current, self._previous)
            sample = build_sample(self._context, current, self._previous)
            self._previous = current
        if self._gpu_indices:
            sample.gpuAllocation.extend(self._gpu_indices)
        if self._gpu_reader is not None:
            sample.gpu.extend(self._gpu_reader(self._cgroup.pids()))
        return sample

    def baseline(self) -> None:
        """A first reading, not published: the first sample then has rates."""
        self.sample()

    async def run(self) -> None:
        """Sample every interval until cancelled; ticks do not drift with read time."""
        loop = asyncio.get_running_loop()
        if self._previous is None:
            await asyncio.to_thread(self.baseline)
        next_tick = loop.time() + self.interval_s
        while True:
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            next_tick += self.interval_s
            self._publish(await asyncio.to_thread(self.sample))

    def attach(self, task: asyncio.Task[None]) -> None:
        self._task = task

    def cancel(self) -> None:
        """Stop sampling without a final sample (daemon shutdown)."""
        if self._task is not None:
            self._task.cancel()

    async def final_sample(self, then: Callable[[], None] | None = None) -> pb.JobMetricsSample:
        """Stop the loop and publish one last sample (call before removing the cgroup).
        Idempotent: a second call returns the same sample. `then` runs after the
        reading on the same thread, whether the reading worked or not."""
        if self._final is not None:
            if then is not None:
                await asyncio.to_thread(then)
            return self._final
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        final = await asyncio.to_thread(self._final_then, then)
        if isinstance(final, Exception):
            raise final
        self._final = final
        self._publish(final)
        return final

    def _final_then(self, then: Callable[[], None] | None) -> pb.JobMetricsSample | Exception:
        try:
            final: pb.JobMetricsSample | Exception = self.sample(final=True)
        except Exception as exc:
            final = exc
        if then is not None:
            then()
        return final
