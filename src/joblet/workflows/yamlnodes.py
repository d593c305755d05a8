"""Reading workflow YAML as a tree of nodes that remember where they were.

PyYAML composes the text into nodes (safe: no tags become objects, nothing
is constructed at all) and this module walks them: each mapping is read with
its duplicate keys refused (PyYAML would keep the last one silently), each
problem is collected with the line and column of its node, and a walk that
expands aliases past a cap stops, so a "billion laughs" file costs a bounded
amount of work. Pure: no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_TEXT_CHARS = 1024 * 1024
MAX_NODES = 200_000  # nodes visited, aliases expanded: a bound on the work per file
MAX_SHOWN = 100  # problems in the message; `problems` keeps them all

_Loader: type[yaml.SafeLoader]
try:  # libyaml is ~10x faster for large workflows; its marks count characters too
    _Loader = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_FLOAT = "tag:yaml.org,2002:float"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow, where it is (line and column from 1)."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"line {self.line}: {where}{self.message}"


class WorkflowInvalid(ValueError):
    """Every problem found in a workflow, in the order of the text."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))
        shown = [str(p) for p in self.problems[:MAX_SHOWN]]
        if len(self.problems) > MAX_SHOWN:  # an error message stays readable and small
            shown.append(f"... and {len(self.problems) - MAX_SHOWN} more problems")
        super().__init__("\n".join(shown))


class TooLarge(Exception):
    """The walk went over MAX_NODES: stop reading this file."""


@dataclass
class Reader:
    """Walks nodes, collecting problems; one per workflow text."""

    problems: list[Problem] = field(default_factory=list)
    visited: int = 0

    def problem(self, node: Node | None, path: str, message: str) -> None:
        line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        self.problems.append(Problem(path, line, column, message))

    def visit(self) -> None:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise TooLarge

    def mapping(self, node: Node, path: str) -> list[tuple[str, Node, Node]] | None:
        """(key, key node, value node) in order; None (and a problem) if not a mapping."""
        self.visit()
        if not isinstance(node, MappingNode):
            self.problem(node, path, f"must be a mapping, got {kind_of(node)}")
            return None
        seen: dict[str, Node] = {}
        entries = []
        for key_node, value_node in node.value:
            self.visit()
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in seen:
                line = seen[key].start_mark.line + 1
                self.problem(
                    key_node, join(path, key), f"duplicate key (first given on line {line})"
                )
                continue
            seen[key] = key_node
            entries.append((key, key_node, value_node))
        return entries

    def key(self, node: Node, path: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag in (_STR, _INT, _BOOL, _FLOAT):
            return str(node.value)
        self.problem(node, path, f"keys must be plain text, got {kind_of(node)}")
        return None

    def known_keys(
        self, entries: list[tuple[str, Node, Node]], path: str, allowed: tuple[str, ...]
    ) -> None:
        for key, key_node, _ in entries:
            if key not in allowed:
                hint = _did_you_mean(key, allowed)
                self.problem(
                    key_node, join(path, key), f"unknown key{hint} (allowed: {', '.join(allowed)})"
                )

    def sequence(self, node: Node, path: str) -> list[Node] | None:
        self.visit()
        if not isinstance(node, SequenceNode):
            self.problem(node, path, f"must be a list, got {kind_of(node)}")
            return None
        for _ in node.value:
            self.visit()
        return list(node.value)

    def text(self, node: Node, path: str, *, numbers: bool = False) -> str | None:
        """A scalar's text. Numbers and booleans count only with `numbers` (env
        values, cpu lists), taken as written: `PORT: 8080` is "8080"."""
        self.visit()
        allowed = (_STR, _INT, _FLOAT, _BOOL) if numbers else (_STR,)
        if isinstance(node, ScalarNode) and node.tag in allowed:
            return str(node.value)
        self.problem(node, path, f"must be text, got {kind_of(node)}")
        return None

    def integer(self, node: Node, path: str) -> int | None:
        self.visit()
        if isinstance(node, ScalarNode) and node.tag == _INT:
            try:
                return int(str(node.value).replace("_", ""), 0)
            except ValueError:
                pass
        self.problem(node, path, f"must be a whole number, got {kind_of(node)}")
        return None

    def texts(self, node: Node, path: str) -> tuple[str, ...]:
        """A list of text items, each checked; the good ones kept."""
        items = self.sequence(node, path)
        if items is None:
            return ()
        found = (self.text(item, f"{path}[{index}]") for index, item in enumerate(items))
        return tuple(text for text in found if text is not None)


def compose(text: str, reader: Reader) -> Node | None:
    """The root node of `text`, or None with a problem when it is not YAML."""
    if len(text) > MAX_TEXT_CHARS:
        reader.problem(None, "", f"workflow is {len(text):,} characters, over {MAX_TEXT_CHARS:,}")
        return None
    try:
        root: Node | None = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "not valid YAML"
        reader.problems.append(Problem("", line, column, f"not valid YAML: {reason}"))
        return None
    except yaml.YAMLError as exc:
        reader.problems.append(Problem("", 1, 1, f"not valid YAML: {exc}"))
        return None
    if root is None:
        reader.problem(None, "", "workflow is empty: give at least `jobs:`")
    return root


def kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {
        _NULL: "nothing",
        _BOOL: f"the boolean {node.value}",
        _INT: f"the number {node.value}",
        _FLOAT: f"the number {node.value}",
    }.get(node.tag, "text" if node.tag == _STR else f"a {node.tag.rsplit(':', 1)[-1]}")


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    # difflib's own pick breaks ties by the larger string; the first choice
    # (in the order of the file) reads better: "t-c" suggests "t-a", not "t-b".
    best, best_score = "", 0.6  # get_close_matches' default cutoff
    matcher = difflib.SequenceMatcher(b=word)
    for choice in choices:
        matcher.set_seq1(choice)
        if matcher.real_quick_ratio() > best_score and matcher.ratio() > best_score:
            best, best_score = choice, matcher.ratio()
    return f' (did you mean "{best}"?)' if best else ""


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """` (did you mean "x"?)` for the closest choice, or ""."""
    return _did_you_mean(word, tuple(choices))


def scalars_under(node: Node, reader: Reader) -> Iterator[ScalarNode]:
    """Every scalar below `node`, aliases followed, counted against MAX_NODES."""
    reader.visit()
    if isinstance(node, ScalarNode):
        yield node
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from scalars_under(item, reader)
    elif isinstance(node, MappingNode):
        for _, value in node.value:
            yield from scalars_under(value, reader)
