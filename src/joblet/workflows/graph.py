"""The requirement graph: cycles and a stable topological order. Pure."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def find_cycles(order: Sequence[str], needs: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Cycles as `[a, b, c, a]`, each job needing the next: every cycle the
    depth-first walk (iterative, YAML order) closes, so at least one in each
    tangle of jobs; each set of jobs reported once."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for root in order:
        if root in state:
            continue
        path: list[str] = [root]
        stack = [iter(needs.get(root, ()))]
        state[root] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                cycle = [*path[path.index(step) :], step]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    cycles.append(cycle)
            elif step not in state and step in needs:
                state[step] = 1
                path.append(step)
                stack.append(iter(needs.get(step, ())))
    return cycles


def topological_order(order: Sequence[str], needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Jobs so that each comes after those it needs; ties in YAML order.
    Jobs on a cycle (refused by validation) come last, in YAML order."""
    index = {name: i for i, name in enumerate(order)}
    waiting = {name: len({d for d in needs.get(name, ()) if d in index}) for name in order}
    users: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for dep in {d for d in needs.get(name, ()) if d in index}:
            users[dep].append(name)
    ready = [index[name] for name in order if waiting[name] == 0]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        name = order[heapq.heappop(ready)]
        result.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, index[user])
    placed = set(result)
    return result + [name for name in order if name not in placed]
