"""One job of a workflow: its keys read from the YAML nodes and checked with
the same rules as a RunJob request (names, command, args, environment,
limits, workdir, volumes, uploads). Problems are collected, never raised.
Requirement references and cycles are checked by `yamlspec`, which sees
every job. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from yaml.nodes import Node, ScalarNode

from joblet.errors import InvalidArgument
from joblet.jobs import request_limits as limits
from joblet.jobs import validation as rules
from joblet.jobs.uploads import normalize_upload_path
from joblet.workflows.envvars import Variable, expand, is_secret_name
from joblet.workflows.expressions import (
    FINAL,
    ExpressionError,
    Requirement,
    atom,
    jobs_of,
    parse_expression,
)
from joblet.workflows.model import Known
from joblet.workflows.yamlnodes import Problem, Reader, join

JOB_KEYS = (
    "command",
    "args",
    "runtime",
    "network",
    "volumes",
    "uploads",
    "workdir",
    "resources",
    "priority",
    "environment",
    "secret_environment",
    "requires",
)
RESOURCE_KEYS = ("max_cpu", "max_memory", "max_io_bps", "cpu_cores", "gpu_count", "gpu_memory_mb")
UPLOAD_KEYS = ("files", "directories")
ANY_CPUS = 1 << 16  # cpu_cores syntax only, when the host's CPU count is not given
_MEMORY = re.compile(r"\s*(\d+)\s*(?:([KMGT])i?B?)?\s*", re.IGNORECASE)
_MIB_PER_UNIT = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}

T = TypeVar("T")


@dataclass(frozen=True)
class RequireItem:
    """A parsed `requires` item with where it is, for reference checks."""

    expr: Requirement
    node: Node
    path: str


def guard(
    reader: Reader, node: Node | None, path: str, check: Callable[..., T], *args: object
) -> T | None:
    """`check(*args)`, or None with its InvalidArgument recorded as a problem at `node`."""
    try:
        return check(*args)
    except InvalidArgument as exc:
        reader.problem(node, path, str(exc))
        return None


def read_env(reader: Reader, node: Node, path: str) -> list[tuple[str, str, Node]]:
    """(key, value, value node) of an environment map, keys and values checked."""
    entries = reader.mapping(node, path) or []
    found = []
    for key, key_node, value_node in entries:
        value = reader.text(value_node, join(path, key), numbers=True)
        if value is None:
            continue
        if guard(
            reader,
            key_node,
            join(path, key),
            rules.check_environment,
            path.rsplit(".", 1)[-1],
            {key: value},
        ):
            found.append((key, value, value_node))
    return found


def define(
    reader: Reader,
    defined: dict[str, Variable],
    entries: list[tuple[str, str, Node]],
    path: str,
    secret: bool,
) -> None:
    """Adds `entries` in order, expanding `${VAR}` from what was defined before."""
    for key, value, node in entries:
        text, from_secret, missing = expand(value, defined)
        for name in missing:
            reader.problem(
                node, join(path, key), f"${{{name}}} names no variable defined before it"
            )
        defined[key] = Variable(text, secret or from_secret or is_secret_name(key))


def read_requires(reader: Reader, node: Node, path: str) -> list[RequireItem]:
    items = reader.sequence(node, path) or []
    if len(items) > limits.MAX_REQUIREMENTS:
        reader.problem(node, path, f"{len(items):,} items, over {limits.MAX_REQUIREMENTS:,}")
        return []
    found = []
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        expr = _read_require(reader, item, item_path)
        if expr is not None:
            found.append(RequireItem(expr, item, item_path))
    return found


def _read_require(reader: Reader, node: Node, path: str) -> Requirement | None:
    if isinstance(node, ScalarNode):
        text = reader.text(node, path)
        return None if text is None else _expression(reader, node, path, text)
    entries = reader.mapping(node, path)
    if entries is None:
        return None
    if len(entries) != 1:
        reader.problem(node, path, "give one job per item: `- JOB: STATUS`, or an expression")
        return None
    key, key_node, value_node = entries[0]
    if key == "expression":
        text = reader.text(value_node, join(path, key))
        return None if text is None else _expression(reader, value_node, path, text)
    statuses = _statuses(reader, value_node, join(path, key))
    if not statuses:
        return None
    try:
        return atom(key, statuses, key_node.start_mark.column + 1)
    except ExpressionError as exc:
        reader.problem(value_node, join(path, key), exc.message)
        return None


def _statuses(reader: Reader, node: Node, path: str) -> tuple[str, ...]:
    if isinstance(node, ScalarNode):
        text = reader.text(node, path)
        return () if text is None else (text.strip(),)
    items = reader.sequence(node, path)
    if not items:
        if items is not None:
            reader.problem(node, path, f"give at least one status ({', '.join(FINAL)}, FINISHED)")
        return ()
    texts = [reader.text(item, f"{path}[{index}]") for index, item in enumerate(items)]
    found = tuple(text.strip() for text in texts if text is not None)
    return found if len(found) == len(items) else ()


def _expression(reader: Reader, node: Node, path: str, text: str) -> Requirement | None:
    try:
        return parse_expression(text)
    except ExpressionError as exc:
        quoted = isinstance(node, ScalarNode) and node.style in ('"', "'")
        column = node.start_mark.column + exc.column + (1 if quoted else 0)
        line = node.start_mark.line + 1
        message = f"{exc.message} (column {exc.column} of {text!r})"
        reader.problems.append(Problem(path, line, column, message))
        return None


def references(items: list[RequireItem]) -> tuple[str, ...]:
    """Job names the requirements mention, first mention first."""
    seen: dict[str, None] = {}
    for item in items:
        for leaf in jobs_of(item.expr):
            seen.setdefault(leaf.job, None)
    return tuple(seen)


def read_priority(reader: Reader, node: Node, path: str) -> int | None:
    """`priority`: a whole number in -1000..1000."""
    value = reader.integer(node, path)
    if value is None:
        return None
    return guard(reader, node, path, rules.check_priority, value)


def read_resources(reader: Reader, node: Node, path: str, known: Known) -> dict[str, object]:
    entries = reader.mapping(node, path) or []
    reader.known_keys(entries, path, RESOURCE_KEYS)
    found: dict[str, object] = {}
    for key, _, value_node in entries:
        where = join(path, key)
        if key == "max_memory":
            found["max_memory_mb"] = _memory_mb(reader, value_node, where)
        elif key == "cpu_cores":
            text = reader.text(value_node, where, numbers=True)
            cpus = known.host_cpus or ANY_CPUS
            if text is not None:
                parsed = guard(reader, value_node, where, rules.parse_cpuset, text, cpus)
                found["cpu_cores"] = rules.format_cpuset(parsed) if parsed else ""
        elif key in RESOURCE_KEYS:
            found[_FIELD[key]] = _count(reader, value_node, where, key, known)
    return {k: v for k, v in found.items() if v is not None}


_FIELD = {
    "max_cpu": "max_cpu",
    "max_io_bps": "max_iobps",
    "gpu_count": "gpu_count",
    "gpu_memory_mb": "gpu_memory_mb",
}


def _count(reader: Reader, node: Node, path: str, key: str, known: Known) -> int | None:
    value = reader.integer(node, path)
    if value is None:
        return None
    if key == "max_cpu" and known.host_cpus is not None:
        return guard(reader, node, path, rules.check_max_cpu, value, known.host_cpus or 1)
    if value < 0:
        reader.problem(node, path, f"{value} must not be negative (0 = no limit)")
        return None
    return value


def _memory_mb(reader: Reader, node: Node, path: str) -> int | None:
    """`max_memory`: a number of MB, or text such as "512M", "2G", "1GiB"."""
    text = reader.text(node, path, numbers=True)
    match = _MEMORY.fullmatch(text) if text is not None else None
    if text is None:
        return None
    if match is None:
        reader.problem(node, path, f"{text!r} is not a memory size: use MB (512) or 512M, 2G")
        return None
    unit = (match.group(2) or "M").upper()
    return int(int(match.group(1)) * _MIB_PER_UNIT[unit])


def read_uploads(
    reader: Reader, node: Node, path: str, available: frozenset[str] | None
) -> tuple[str, ...]:
    entries = reader.mapping(node, path) or []
    reader.known_keys(entries, path, UPLOAD_KEYS)
    found: list[str] = []
    for key, _, value_node in entries:
        items = reader.sequence(value_node, join(path, key)) or []
        for index, item in enumerate(items):
            where = f"{join(path, key)}[{index}]"
            text = reader.text(item, where)
            normal = (
                None if text is None else guard(reader, item, where, normalize_upload_path, text)
            )
            if normal is None:
                continue
            if available is not None and normal not in available:
                reader.problem(
                    item, where, f'"{normal}" is not among the files sent with the workflow'
                )
            found.append(normal)
    return tuple(dict.fromkeys(found))


def check_bounds(reader: Reader, node: Node, path: str, values: Mapping[str, object]) -> None:
    """The RunJob size limits, on the merged job."""
    command = str(values.get("command", ""))
    args = values.get("args", ())
    env = values.get("environment", {})
    secrets = values.get("secret_environment", {})
    assert isinstance(args, tuple) and isinstance(env, dict) and isinstance(secrets, dict)
    guard(reader, node, path, limits.check_text, "command", command, limits.MAX_COMMAND_BYTES)
    guard(reader, node, path, limits.check_args_bounds, args)
    guard(
        reader,
        node,
        path,
        lambda: limits.check_environment_bounds(
            ("environment", env), ("secret_environment", secrets)
        ),
    )
