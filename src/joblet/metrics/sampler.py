"""JobSampler: reads one running job; the hub's shared tick (metrics.tick)
calls it every interval, together with every other job due then.
`final_sample()` takes the last one when the job ends, so even a job
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
from joblet.metrics.reader import (
    SlowReads,
    cgroup_files,
    cgroup_path,
    read_snapshot,
    read_snapshot_kept,
)
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
        # v1's cpu.stat only counts throttling, which needs a CPU quota.
        unthrottled = self._files.version == "v1" and not limits.max_cpu_percent
        self._slow = SlowReads(self._files, frozenset({"cpu.stat"}) if unthrottled else frozenset())
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
        self._lock = threading.Lock()  # the tick's thread and final_sample's may overlap
        self._final: pb.JobMetricsSample | None = None
        # When the shared tick takes this job next (loop time, set by the tick).
        self.next_at = 0.0
        # Set as the final sample starts: a tick's sample of this job that is
        # still being read is then dropped, never published after the final one.
        self.closed = False

    def sample(self, *, final: bool = False) -> pb.JobMetricsSample:
        """Read the job now and compute rates against the previous reading (blocking)."""
        with self._lock:
            if self._init_pid:
                current = read_snapshot_kept(
                    self._cgroup, self._init_pid, self._procfs, self._slow, full=final
                )
            else:
                current = read_snapshot(self._cgroup, None, self._procfs, self._files)
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

    @property
    def has_baseline(self) -> bool:
        return self._previous is not None

    def take(self) -> pb.JobMetricsSample | None:
        """The tick's reading (blocking): a sample, or None when this was the
        job's baseline (a re-attached job's first reading has no rates)."""
        if self._previous is None:
            self.baseline()
            return None
        return self.sample()

    async def final_sample(self, then: Callable[[], None] | None = None) -> pb.JobMetricsSample:
        """Publish one last sample (call before removing the cgroup); the tick
        takes no other after it. Idempotent: a second call returns the same
        sample. `then` runs after the reading on the same thread, whether the
        reading worked or not."""
        if self._final is not None:
            if then is not None:
                await asyncio.to_thread(then)
            return self._final
        self.closed = True
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
