"""Which job holds which GPU (pure; the allocator owns one and does the I/O).

Exclusive by default: a GPU belongs to at most one job. With sharing on, jobs
that declare gpu_memory_mb share a GPU while their declared memory fits (a
reservation the node keeps, not a hardware limit); a job that declares none
still takes its GPUs whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from joblet.gpu.model import Gpu, GpuHost, GpuRequest
from joblet.gpu.strategies import STRATEGIES, Context


@dataclass(frozen=True)
class Grant:
    job_id: str
    indices: tuple[int, ...]
    memory_mb: int  # reserved on each GPU (0: whole GPUs)


class AllocationTable:
    def __init__(
        self, host: GpuHost, *, sharing: bool = False, strategy: str = "first-fit"
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown GPU strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
        self.host = host
        self.sharing = sharing
        self.strategy = strategy
        self._grants: dict[str, Grant] = {}
        self._released: dict[int, int] = {}  # index -> sequence number of its last release
        self._seq = 0

    # ---- questions -----------------------------------------------------

    def impossible(self, req: GpuRequest) -> str:
        """Why the node could never meet `req` (empty: it could, now or later)."""
        host = self.host
        if req.wanted <= 0:
            return ""
        if not host.gpus:
            return f"the job asks for {req.wanted} GPU(s); this node has no GPUs"
        if req.memory_mb and not host.memory_known:
            return (
                "gpu_memory_mb cannot be honoured: the GPU inventory "
                f"({host.source}) does not know GPU memory sizes"
            )
        if req.count and req.pins and req.count != len(req.pins):
            return f"gpu_count {req.count} does not match the {len(req.pins)} pinned GPU(s)"
        usable = [g for g in self._eligible(req) if g.memory_mb >= req.memory_mb]
        if len(usable) < req.wanted:
            memory = f" with at least {req.memory_mb} MB each" if req.memory_mb else ""
            pins = f" among {', '.join(req.pins)}" if req.pins else ""
            return f"the job asks for {req.wanted} GPU(s){memory}{pins}; {host.describe()}"
        return ""

    def holders(self, index: int) -> tuple[str, ...]:
        return tuple(job for job, g in self._grants.items() if index in g.indices)

    def grant(self, job_id: str) -> Grant | None:
        return self._grants.get(job_id)

    def grants(self) -> dict[str, Grant]:
        return dict(self._grants)

    # ---- changes -------------------------------------------------------

    def allocate(self, job_id: str, req: GpuRequest) -> Grant | None:
        """GPUs for `job_id` now, or None when too few are free (it waits)."""
        held = self._grants.get(job_id)
        if held is not None:
            return held
        if self.impossible(req):
            return None
        shared = self.sharing and req.memory_mb > 0
        candidates = [g for g in self._eligible(req) if self._fits(g, req.memory_mb, shared)]
        ctx = Context(
            free_mb={g.index: self._free_mb(g) for g in candidates},
            released_seq=self._released,
            topology=self.host.topology,
        )
        chosen = STRATEGIES[self.strategy](candidates, req.wanted, ctx)
        if chosen is None:
            return None
        grant = Grant(
            job_id, tuple(sorted(g.index for g in chosen)), req.memory_mb if shared else 0
        )
        self._grants[job_id] = grant
        return grant

    def restore(self, job_id: str, indices: tuple[int, ...], memory_mb: int = 0) -> None:
        """Take back the grant of a job a restarted daemon re-attached."""
        known = self.host.by_index()
        kept = tuple(i for i in indices if i in known)
        if kept:
            self._grants[job_id] = Grant(job_id, kept, memory_mb if self.sharing else 0)

    def release(self, job_id: str) -> tuple[int, ...]:
        grant = self._grants.pop(job_id, None)
        if grant is None:
            return ()
        for index in grant.indices:
            self._seq += 1
            self._released[index] = self._seq
        return grant.indices

    # ---- internals -----------------------------------------------------

    def _eligible(self, req: GpuRequest) -> list[Gpu]:
        gpus = [g for g in self.host.gpus if not g.mig]
        if not req.pins:
            return gpus
        pins = set(req.pins)
        return [g for g in gpus if str(g.index) in pins or g.uuid in pins]

    def _free_mb(self, gpu: Gpu) -> int:
        reserved = sum(g.memory_mb for g in self._grants.values() if gpu.index in g.indices)
        return gpu.memory_mb - reserved

    def _fits(self, gpu: Gpu, memory_mb: int, shared: bool) -> bool:
        if gpu.memory_mb < memory_mb:
            return False
        holders = [g for g in self._grants.values() if gpu.index in g.indices]
        if not holders:
            return True
        if not shared or any(g.memory_mb == 0 for g in holders):
            return False
        return self._free_mb(gpu) >= memory_mb
