"""A workflow's jobs as a layered graph, drawn as SVG on the server.

Layering: each job one layer below its deepest dependency (longest path).
Ordering: a few sweeps of the barycentre heuristic (Sugiyama et al.) put each
job near the mean position of its neighbours in the layer above, then below,
which removes most edge crossings. Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from itertools import pairwise

SWEEPS = 4
PLACEHOLDER = "\x00"  # no job name holds it
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 150, 36, 30, 56, 12


@dataclass(frozen=True)
class DagNode:
    name: str
    status: str = ""
    href: str = ""


@dataclass(frozen=True)
class Layout:
    """Rows of names, top first; an edge spanning several layers passes through
    a placeholder in each layer between (named in `routes`, drawn as nothing)."""

    layers: tuple[tuple[str, ...], ...]
    edges: tuple[tuple[str, str], ...]  # (dependency, dependant)
    routes: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def segments(self) -> list[tuple[str, str]]:
        """Each edge as its pieces between adjacent layers."""
        pieces = []
        for edge in self.edges:
            path = (edge[0], *self.routes.get(edge, ()), edge[1])
            pieces += list(pairwise(path))
        return pieces


def is_placeholder(name: str) -> bool:
    return name.startswith(PLACEHOLDER)


def layers_of(deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each node's layer: 0 without dependencies, else 1 + its deepest one.
    Unknown dependencies are ignored; a cycle raises ValueError."""
    layer: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(name: str) -> int:
        if name in layer:
            return layer[name]
        if name in visiting:
            raise ValueError(f"dependency cycle through {name!r}")
        visiting.add(name)
        parents = [d for d in deps.get(name, ()) if d in deps]
        layer[name] = 1 + max((depth(p) for p in parents), default=-1)
        visiting.discard(name)
        return layer[name]

    for name in sorted(deps):
        depth(name)
    return layer


def _barycentre(
    names: list[str], neighbours: Mapping[str, list[str]], pos: dict[str, int]
) -> list[str]:
    def key(name: str) -> tuple[float, int]:
        near = [pos[n] for n in neighbours.get(name, []) if n in pos]
        return (sum(near) / len(near) if near else float(pos[name]), pos[name])

    return sorted(names, key=key)


def layout(deps: Mapping[str, Sequence[str]]) -> Layout:
    """Layers (each ordered to reduce crossings) and the edges between them."""
    layer = layers_of(deps)
    edges = tuple(sorted((d, n) for n in deps for d in deps[n] if d in deps))
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for name in sorted(layer):
        rows[layer[name]].append(name)
    routes: dict[tuple[str, str], tuple[str, ...]] = {}
    for a, b in edges:
        between = tuple(f"{PLACEHOLDER}{a}>{b}>{i}" for i in range(layer[a] + 1, layer[b]))
        for name, i in zip(between, range(layer[a] + 1, layer[b]), strict=True):
            rows[i].append(name)
        routes[(a, b)] = between
    result = Layout((), edges, routes)
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for a, b in result.segments():
        up.setdefault(b, []).append(a)
        down.setdefault(a, []).append(b)
    for sweep in range(SWEEPS):
        order = range(1, len(rows)) if sweep % 2 == 0 else range(len(rows) - 2, -1, -1)
        for i in order:
            pos = {n: j for row in rows for j, n in enumerate(row)}
            rows[i] = _barycentre(rows[i], up if sweep % 2 == 0 else down, pos)
    return Layout(tuple(tuple(r) for r in rows), edges, routes)


def crossings(result: Layout) -> int:
    """How many pairs of edges between adjacent layers cross."""
    pos = {n: (i, j) for i, row in enumerate(result.layers) for j, n in enumerate(row)}
    spans = [(pos[a], pos[b]) for a, b in result.segments()]
    count = 0
    for k, (a1, b1) in enumerate(spans):
        for a2, b2 in spans[k + 1 :]:
            same = a1[0] == a2[0] and b1[0] == b2[0]
            if same and (a1[1] - a2[1]) * (b1[1] - b2[1]) < 0:
                count += 1
    return count


def render_svg(result: Layout, nodes: Mapping[str, DagNode]) -> str:
    """The graph as an SVG element; each node a link coloured by its status
    (a CSS class, so the page's stylesheet decides the colours)."""
    width = max((len(r) for r in result.layers), default=1) * (NODE_W + GAP_X) + 2 * PAD
    height = len(result.layers) * (NODE_H + GAP_Y) + 2 * PAD
    centre: dict[str, tuple[int, int]] = {}
    for i, row in enumerate(result.layers):
        for j, name in enumerate(row):
            centre[name] = (PAD + j * (NODE_W + GAP_X) + NODE_W // 2, PAD + i * (NODE_H + GAP_Y))
    parts = [f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}">']  # fmt: skip
    for a, b in result.edges:
        path = [centre[n] for n in (a, *result.routes.get((a, b), ()), b)]
        points = [f"{path[0][0]},{path[0][1] + NODE_H}"]
        points += [f"{x},{y + NODE_H // 2}" for x, y in path[1:-1]]
        points.append(f"{path[-1][0]},{path[-1][1]}")
        parts.append(f'<polyline class="edge" data-from="{escape(a)}" data-to="{escape(b)}" '
                     f'points="{" ".join(points)}"/>')  # fmt: skip
    for name, (x, y) in centre.items():
        if is_placeholder(name):
            continue
        node = nodes.get(name, DagNode(name))
        status = escape(node.status.lower() or "unknown")
        box = (f'<rect class="node s-{status}" x="{x - NODE_W // 2}" y="{y}" '
               f'width="{NODE_W}" height="{NODE_H}" rx="6"/>'
               f'<text x="{x}" y="{y + NODE_H // 2 + 5}">{escape(name[:20])}</text>')  # fmt: skip
        group = f'<g class="dag-node" data-name="{escape(name)}" data-status="{status}">{box}</g>'
        if node.href:
            group = f'<a href="{escape(node.href)}">{group}</a>'
        parts.append(group)
    parts.append("</svg>")
    return "".join(parts)
