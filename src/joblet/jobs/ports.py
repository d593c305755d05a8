"""What the job manager needs from the rest of the daemon: small interfaces,
so the manager is testable with fakes and the composition root picks the
real parts (launcher client, metrics hub, network and volume managers, state
client)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from joblet.gpu.metrics import GpuReader
from joblet.isolation.spec import LaunchSpec
from joblet.jobs.model import Job
from joblet.resources.interface import JobCgroup, Limits


class Launcher(Protocol):
    async def launch(self, spec: LaunchSpec) -> int: ...

    async def signal(self, job_id: str, signum: int) -> bool: ...


class JobMetrics(Protocol):
    """Samples running jobs (the metrics hub)."""

    def start_job(
        self,
        job_id: str,
        cgroup: JobCgroup,
        limits: Limits,
        init_pid: int | None = None,
        *,
        from_start: bool = False,
        gpu_indices: tuple[int, ...] = (),
        gpu_reader: GpuReader | None = None,
    ) -> object: ...

    async def finish_job(self, job_id: str, then: Callable[[], None] | None = None) -> object:
        """The job's final sample; `then` runs right after it on the same
        worker thread (its exception is raised here)."""


class JobNetworks(Protocol):
    """Addresses and wiring of job networks (joblet.network.NetworkManager)."""

    def allocate(
        self,
        job_id: str,
        network: str,
        job_name: str = "",
        *,
        ingress_bps: int = 0,
        egress_bps: int = 0,
        admin: bool = False,
    ) -> dict[str, Any]: ...

    def release(self, job_id: str) -> None: ...

    def drop_links_of(self, job_id: str) -> None: ...


class JobVolumes(Protocol):
    """Named volumes (joblet.volumes.VolumeManager)."""

    def resolve_for_job(self, entries: Sequence[str]) -> tuple[tuple[str, str, bool], ...]: ...

    def block_devices(self, names_or_entries: Sequence[str]) -> tuple[str, ...]: ...


class JobListener(Protocol):
    """Told of every change to a job record (the state service's client).
    Both calls must return at once: a job never waits on a listener, except
    through `recorded`, once per start."""

    def changed(self, job: Job) -> None: ...

    def deleted(self, job_id: str) -> None: ...

    def push(self) -> None:
        """Send the changes told so far to the store now: the caller will wait
        for them (recorded) and has other work to do first."""
        ...

    async def recorded(self, timeout: float) -> bool:
        """Wait until every change told so far is stored; False after `timeout`."""
        ...
