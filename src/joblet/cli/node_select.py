"""Which nodes `--node` names, and how answers from several are put together.

`--node NAME` is one node, as always; `--node a,b` and `--node all` are many.
Pure functions: no grpc, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from joblet.client.errors import EXIT_USAGE, ClientConfigError, CliError

ALL = "all"
NODE_HEADER = "NODE"
DEFAULT_NODE_TIMEOUT_S = 3.0

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)
_Item = TypeVar("_Item")


def names_many(selection: str) -> bool:
    """Whether `selection` (the --node text) names several nodes."""
    return selection == ALL or "," in selection


def expand(selection: str, configured: Sequence[str]) -> list[str]:
    """The node names `selection` stands for, in the order given (`all`: the
    config's order); an unknown or repeated name is a config error."""
    if selection == ALL:
        return list(configured)
    names = [name.strip() for name in selection.split(",")]
    if any(not name for name in names):
        raise CliError(f"--node {selection!r}: an empty node name", EXIT_USAGE)
    unknown = [name for name in names if name not in configured]
    if unknown:
        available = ", ".join(configured) or "none"
        raise ClientConfigError(
            f"node {', '.join(repr(n) for n in unknown)} not in the config"
            f" (available nodes: {available})"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CliError(f"--node names {', '.join(repeated)} more than once", EXIT_USAGE)
    return names


def one_node_only(command: str, selection: str) -> CliError:
    """The usage error of a command that changes something, given many nodes."""
    return CliError(
        f"{command} acts on one node; --node {selection!r} names several (pick one)", EXIT_USAGE
    )


@dataclass(frozen=True)
class NodeAnswer(Generic[_T_co]):
    """One node's result, or why it has none (`error`, `code`: a gRPC status name)."""

    node: str
    value: _T_co | None = None
    error: str = ""
    code: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def answered(answers: Iterable[NodeAnswer[_T]]) -> list[tuple[str, _T]]:
    """(node, value) of the nodes that answered, in the order asked."""
    return [(a.node, a.value) for a in answers if a.ok and a.value is not None]


def failed(answers: Iterable[NodeAnswer[_T]]) -> list[NodeAnswer[_T]]:
    return [a for a in answers if not a.ok]


def tag_rows(per_node: Sequence[tuple[str, Sequence[_Item]]]) -> list[tuple[str, _Item]]:
    """Every item of every node, each with its node, in the nodes' order."""
    return [(node, item) for node, items in per_node for item in items]


def merge_sorted(
    per_node: Sequence[tuple[str, Sequence[_Item]]],
    key: Callable[[_Item], object],
    limit: int = 0,
    identity: Callable[[_Item], object] | None = None,
) -> list[tuple[str, _Item]]:
    """The items of every node, ordered by `key` descending (newest first),
    stable within a node, at most `limit` (0: all); with `identity`, an item
    several nodes answered with (a cluster's job) once, from the first."""
    tagged = tag_rows(per_node)
    if identity is not None:
        firsts = {identity(pair[1]): pair for pair in reversed(tagged)}
        tagged = [pair for pair in tagged if firsts[identity(pair[1])] is pair]
    tagged.sort(key=lambda pair: key(pair[1]), reverse=True)  # type: ignore[arg-type,return-value]
    return tagged[:limit] if limit else tagged


def with_node_column(
    headers: Sequence[str], rows: Sequence[Sequence[str]], nodes: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    """`headers` and `rows` with NODE in front."""
    return [NODE_HEADER, *headers], [[node, *row] for node, row in zip(nodes, rows, strict=True)]


@dataclass(frozen=True)
class JobMatch:
    node: str
    uuid: str


def pick_job(wanted: str, matches: Sequence[JobMatch], asked: Sequence[str]) -> JobMatch:
    """The one job `wanted` (an id, a prefix of one, a name) names among the
    nodes `asked`; NOT_FOUND when none has it, ambiguous when several do.
    Nodes of one cluster all answer for its jobs: one job found through
    several nodes is one match (the first node asked)."""
    matches = list({m.uuid: m for m in reversed(matches)}.values())[::-1]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CliError(f"job {wanted} not found on nodes {', '.join(asked)}", code="NOT_FOUND")
    found = ", ".join(f"{m.uuid} on {m.node}" for m in matches)
    raise CliError(
        f"job {wanted!r} is ambiguous across nodes: {found}; type more characters or pick"
        " a node with --node",
        code="INVALID_ARGUMENT",
    )


def node_timeout(flag: float | None, config_value: float | None) -> float:
    """The per-node timeout: --node-timeout, else the config's, else 3 s."""
    return flag or config_value or DEFAULT_NODE_TIMEOUT_S


def by_node(answers: Iterable[NodeAnswer[_T]]) -> Mapping[str, NodeAnswer[_T]]:
    return {a.node: a for a in answers}
