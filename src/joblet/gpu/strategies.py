"""How GPUs are picked among those that fit a request (pure functions).

Each strategy gets the candidates (free, large enough, pinned if pins were
given) and returns `count` of them, or None when there are too few.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from joblet.gpu.model import Gpu

FAR = 100  # topology level of a pair NVML gave no level for
MAX_PACK_SETS = 20_000  # combinations tried by pack before it settles for first-fit


@dataclass(frozen=True)
class Context:
    free_mb: Mapping[int, int] = field(default_factory=dict)  # index -> memory not reserved
    released_seq: Mapping[int, int] = field(default_factory=dict)  # index -> last release
    topology: Mapping[frozenset[int], int] = field(default_factory=dict)


Strategy = Callable[[Sequence[Gpu], int, Context], tuple[Gpu, ...] | None]


def first_fit(candidates: Sequence[Gpu], count: int, ctx: Context) -> tuple[Gpu, ...] | None:
    """The lowest indices."""
    ordered = sorted(candidates, key=lambda g: g.index)
    return tuple(ordered[:count]) if len(ordered) >= count else None


def best_fit(candidates: Sequence[Gpu], count: int, ctx: Context) -> tuple[Gpu, ...] | None:
    """The GPUs with the least (unreserved) memory that still fits."""
    ordered = sorted(candidates, key=lambda g: (ctx.free_mb.get(g.index, g.memory_mb), g.index))
    return tuple(ordered[:count]) if len(ordered) >= count else None


def spread(candidates: Sequence[Gpu], count: int, ctx: Context) -> tuple[Gpu, ...] | None:
    """The least recently released first (never released ones before all)."""
    ordered = sorted(candidates, key=lambda g: (ctx.released_seq.get(g.index, -1), g.index))
    return tuple(ordered[:count]) if len(ordered) >= count else None


def set_distance(gpus: Sequence[Gpu], topology: Mapping[frozenset[int], int]) -> int:
    return sum(
        topology.get(frozenset((a.index, b.index)), FAR) for a, b in itertools.combinations(gpus, 2)
    )


def pack(candidates: Sequence[Gpu], count: int, ctx: Context) -> tuple[Gpu, ...] | None:
    """For count > 1 the closest set (least summed topology level, then lowest
    indices); one GPU is first-fit."""
    ordered = sorted(candidates, key=lambda g: g.index)
    if len(ordered) < count:
        return None
    if count <= 1:
        return tuple(ordered[:count])
    best: tuple[Gpu, ...] | None = None
    best_key: tuple[int, tuple[int, ...]] | None = None
    for tried, combo in enumerate(itertools.combinations(ordered, count)):
        if tried >= MAX_PACK_SETS:
            break
        key = (set_distance(combo, ctx.topology), tuple(g.index for g in combo))
        if best_key is None or key < best_key:
            best, best_key = combo, key
    return best


STRATEGIES: dict[str, Strategy] = {
    "first-fit": first_fit,
    "best-fit": best_fit,
    "pack": pack,
    "spread": spread,
}
