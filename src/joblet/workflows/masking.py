"""Hiding a workflow's secret values in its YAML text, in place.

Status and listing RPCs return the workflow's YAML; every secret value in it
(all of `secret_environment`, and `environment` values whose keys look like
secrets) is replaced by `***` where it stands (quoted where the value was
plain: a bare `***` is YAML for an alias), found from the parser's marks, so
comments, order and layout stay as the user wrote them. A value shared
through an anchor is masked where the anchor is. Pure: no I/O.
"""

from __future__ import annotations

import functools

from yaml.nodes import MappingNode, Node, ScalarNode

from joblet.workflows.envvars import is_secret_name
from joblet.workflows.yamlnodes import Reader, TooLarge, compose, scalars_under

MASK = "***"
UNREADABLE = "# (workflow text hidden: it could not be read to hide its secrets)\n"


# Listing and status calls mask the same stored texts again and again; a
# large workflow takes tens of milliseconds to parse.
@functools.lru_cache(maxsize=64)
def mask_secrets(text: str) -> str:
    """`text` with each secret value replaced by `***`. A text that does not
    parse is replaced as a whole: nothing is shown rather than a secret."""
    reader = Reader()
    try:
        root = compose(text, reader)
        spans = sorted({id(n): n for n in _secret_nodes(root, reader)}.values(), key=_start)
    except TooLarge:
        return UNREADABLE
    if reader.problems:
        return UNREADABLE
    out: list[str] = []
    pos = 0
    for node in spans:
        start, end = _start(node), node.end_mark.index
        if start < pos:  # inside a span already masked
            continue
        out.append(text[pos:start])
        out.append(_masked(text[start:end], node.style))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _start(node: Node) -> int:
    return int(node.start_mark.index)


def _masked(span: str, style: str | None) -> str:
    if span[:1] in ("&", "!"):  # keep an anchor or a tag: aliases elsewhere name it
        token, _, rest = span.partition(" ")
        stripped = rest.lstrip(" ")
        return token + rest[: len(rest) - len(stripped)] + " " + _masked(stripped, style)
    if style in ('"', "'"):
        return f"{style}{MASK}{style}"
    if style in ("|", ">"):
        header, _, body = span.partition("\n")
        indent = body[: len(body) - len(body.lstrip(" "))]
        return f"{header}\n{indent}{MASK}\n"
    return f'"{MASK}"'  # a bare *** would read as an alias


def _secret_nodes(root: Node | None, reader: Reader) -> list[ScalarNode]:
    found: list[ScalarNode] = []
    for holder in _env_holders(root):
        for key, value in _pairs(holder):
            if key == "secret_environment":
                found.extend(scalars_under(value, reader))
            elif key == "environment":
                for name, item in _pairs(value):
                    if is_secret_name(name):
                        found.extend(scalars_under(item, reader))
    return found


def _env_holders(root: Node | None) -> list[Node]:
    """The top-level mapping and each job's mapping."""
    if root is None:
        return []
    holders = [root]
    for key, value in _pairs(root):
        if key == "jobs":
            holders.extend(job for _, job in _pairs(value))
    return holders


def _pairs(node: Node) -> list[tuple[str, Node]]:
    if not isinstance(node, MappingNode):
        return []
    return [(str(k.value), v) for k, v in node.value if isinstance(k, ScalarNode)]
