"""Jobs in an order where each comes after the jobs it requires (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def topological(dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    """Every job after the ones it names, ties in the mapping's (YAML) order.
    Names outside the mapping are ignored; a cycle (refused by the parser
    before this runs) leaves its jobs at the end in YAML order."""
    position = {name: index for index, name in enumerate(dependencies)}
    waiting = {
        name: {d for d in deps if d in dependencies and d != name}
        for name, deps in dependencies.items()
    }
    dependents: dict[str, list[str]] = {name: [] for name in dependencies}
    for name, deps in waiting.items():
        for dep in deps:
            dependents[dep].append(name)
    ready = [name for name in dependencies if not waiting[name]]
    out: list[str] = []
    while ready:
        ready.sort(key=position.__getitem__, reverse=True)
        name = ready.pop()
        out.append(name)
        for child in dependents[name]:
            waiting[child].discard(name)
            if not waiting[child]:
                ready.append(child)
    seen = set(out)
    return out + [name for name in dependencies if name not in seen]
