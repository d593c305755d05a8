"""A reader for the plain YAML that `joblet setup` writes for rnx, so that rnx
usually need not import PyYAML (~15 ms of every `rnx job list`).

It reads nested block mappings whose keys are names, literal blocks (`|`,
`|-`) and strings that YAML could not take for anything else: quoted without
escapes, a name, `host:port`, `a.b.c.d:port`. For anything else (flow style,
anchors, tags, sequences, escapes, comments after a value, words and numbers
YAML 1.1 reads as booleans, null or numbers, ...) it answers None and the
caller reads the file with PyYAML. So a file it accepts means the same to
both readers, and a file it declines reads exactly as before.
"""

from __future__ import annotations

import re

_KEY_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*?))? *")
# A letter first keeps YAML 1.1 from reading a number or a timestamp; a dotted
# quad before the port keeps it from reading a base-60 number.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9._/-]*(?::[0-9]+)?|[0-9]{1,3}(?:\.[0-9]{1,3}){3}:[0-9]+")
# Plain words YAML 1.1 reads as booleans or null (in any case, to be safe).
_WORDS = frozenset({"yes", "no", "y", "n", "true", "false", "on", "off", "null"})
# Tabs, carriage returns and other control characters: YAML treats them in
# ways this reader does not follow.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")

Mapping = dict[str, "Mapping | str"]


def parse_plain_yaml(text: str) -> Mapping | None:
    """The mapping `text` holds, or None when it is not in the plain subset."""
    if not text.isascii() or _CONTROL.search(text):
        return None
    lines = text.split("\n")
    root: Mapping = {}
    # Per open mapping, innermost last: the indent of the key that holds it,
    # the mapping, and the indent of its own keys (None until the first).
    open_maps: list[tuple[int, Mapping, list[int]]] = [(-1, root, [])]
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip() or line.lstrip(" ").startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        match = _KEY_LINE.fullmatch(line, indent)
        if match is None:
            return None
        key, value = match.group(1), match.group(2)
        while indent <= open_maps[-1][0]:
            open_maps.pop()
        _, parent, key_indent = open_maps[-1]
        if key_indent != [indent]:  # every key of a mapping at the same indent
            if key_indent:
                return None
            key_indent.append(indent)
        if key in parent or key.lower() in _WORDS:
            return None
        result, index = _value(value, lines, index, indent)
        if result is None:
            return None
        parent[key] = result
        if isinstance(result, dict):
            open_maps.append((indent, result, []))
    return root if _no_empty_mappings(root) else None


def _value(
    value: str | None, lines: list[str], index: int, key_indent: int
) -> tuple[Mapping | str | None, int]:
    """What follows `key:` (a new mapping, a literal block or a string; None
    if outside the subset), and the index of the line after it."""
    if not value:
        return {}, index
    if value in ("|", "|-"):
        return _literal_block(lines, index, key_indent, keep_newline=value == "|")
    return _scalar(value), index


def _literal_block(
    lines: list[str], index: int, key_indent: int, *, keep_newline: bool
) -> tuple[str | None, int]:
    """The text of the block starting at `lines[index]`, and the index after it."""
    body: list[str] = []
    block_indent = 0
    while index < len(lines):
        line = lines[index]
        if line.strip():
            indent = len(line) - len(line.lstrip(" "))
            if indent <= key_indent:
                break
            if not block_indent:
                block_indent = indent
            if indent < block_indent:
                return None, index
            body.append(line[block_indent:])
        elif line:
            return None, index  # spaces only: YAML has rules for these, keep out of them
        else:
            body.append("")
        index += 1
    while body and not body[-1]:
        body.pop()
    if not body:
        return None, index  # an empty block: leave it to PyYAML
    return "\n".join(body) + ("\n" if keep_newline else ""), index


def _scalar(value: str) -> str | None:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        return inner if '"' not in inner and "\\" not in inner else None
    if len(value) >= 2 and value[0] == value[-1] == "'":
        inner = value[1:-1]
        return inner if "'" not in inner else None
    if _PLAIN.fullmatch(value) and value.lower() not in _WORDS:
        return value
    return None


def _no_empty_mappings(mapping: Mapping) -> bool:
    """`key:` with nothing under it is null in YAML, not an empty mapping."""
    return all(
        bool(value) and _no_empty_mappings(value)
        for value in mapping.values()
        if isinstance(value, dict)
    )
