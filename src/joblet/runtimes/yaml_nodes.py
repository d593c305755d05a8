"""Checking a YAML document node by node, every problem kept with its place.

The text is composed by PyYAML's safe loader into nodes (no tags, no Python
objects); each check reads one node, records what is wrong with its line and
column, and returns a usable default so the walk goes on and a user sees all
problems at once. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import yaml

from joblet.config.units import parse_duration_s

MAX_LIST = 1000
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"

Node = yaml.Node


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


def at(node: Node, message: str) -> Problem:
    return Problem(node.start_mark.line + 1, node.start_mark.column + 1, message)


class NodeChecker:
    """The checks for one document; `problems` collects what they find."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, node: Node, message: str) -> None:
        self.problems.append(at(node, message))

    def compose(self, text: str, max_bytes: int) -> Node | None:
        """The document's root node; None (with a problem) when it is no YAML."""
        if len(text.encode()) > max_bytes:
            self.problems.append(Problem(1, 1, f"the document is over {max_bytes} bytes"))
            return None
        try:
            root: Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            self.problems.append(Problem(line, column, f"not valid YAML: {exc.problem}"))
            return None
        except yaml.YAMLError as exc:
            self.problems.append(Problem(1, 1, f"not valid YAML: {exc}"))
            return None
        return root

    def mapping(
        self, node: Node, what: str, keys: frozenset[str], required: tuple[str, ...] = ()
    ) -> dict[str, Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
            return None
        fields: dict[str, Node] = {}
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or key_node.tag != _STR:
                self.fail(key_node, f"{what}: keys must be strings")
            elif key in fields:
                self.fail(key_node, f"{what}: duplicate key {key!r}")
            elif key not in keys:
                known = ", ".join(sorted(keys))
                self.fail(key_node, f"{what}: unknown key {key!r} (known: {known})")
            else:
                fields[key] = value
        for key in required:
            if key not in fields:
                self.fail(node, f"{what}: {key!r} is required")
        return fields

    def string(self, node: Node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
            hint = " (quote it)" if isinstance(node, yaml.ScalarNode) else ""
            self.fail(node, f"{what} must be a string{hint}")
            return None
        return str(node.value)

    def matching(self, node: Node, what: str, pattern: re.Pattern[str]) -> str:
        value = self.string(node, what)
        if value is not None and pattern.fullmatch(value) is None:
            self.fail(node, f"{what} {value[:80]!r} is not allowed here")
            return ""
        return value or ""

    def integer(self, node: Node, what: str) -> int:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _INT:
            self.fail(node, f"{what} must be a whole number")
            return 0
        value = int(node.value.replace("_", ""), 0)
        if value < 0:
            self.fail(node, f"{what} must not be negative")
        return value

    def boolean(self, node: Node, what: str) -> bool:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _BOOL:
            self.fail(node, f"{what} must be true or false")
            return False
        return str(node.value).lower() in ("true", "yes", "on")

    def duration(self, node: Node, what: str) -> float:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (_STR, _INT):
            self.fail(node, f"{what} must be a duration such as 90s or 20m")
            return 0.0
        try:
            seconds = parse_duration_s(node.value if node.tag == _STR else int(node.value))
        except ValueError as exc:
            self.fail(node, f"{what}: {exc}")
            return 0.0
        if seconds <= 0:
            self.fail(node, f"{what} must be above 0")
        return seconds

    def items(self, node: Node, what: str) -> Iterator[Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{what} must be a list")
            return
        if len(node.value) > MAX_LIST:
            self.fail(node, f"{what} has more than {MAX_LIST} entries")
            return
        yield from node.value

    def strings(self, node: Node, what: str, check: Callable[[str], str | None]) -> list[str]:
        out = []
        for item in self.items(node, what):
            value = self.string(item, f"an entry of {what}")
            problem = check(value) if value is not None else None
            if problem:
                self.fail(item, problem)
            elif value is not None:
                out.append(value)
        return out


class AnyKey(frozenset[str]):
    """A key set that admits every string: environment names are checked apart."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)
