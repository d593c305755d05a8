"""Protobuf messages as the dicts the reference SDK returns: snake_case keys
(`maxCPU` -> `max_cpu`, `topByCPU` -> `top_by_cpu`), every field present,
int64 as int, Timestamps as datetime (None when unset)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

Field = Any  # a FieldDescriptor (pure Python or upb: the stubs name only the former)

_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(name: str) -> str:
    return _BOUNDARY.sub("_", name).lower()


def to_snake_dict(message: Message, renames: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        key = (renames or {}).get(field.name) or snake(field.name)
        out[key] = _value(field, getattr(message, field.name))
    return out


def _value(field: Field, value: Any) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return {k: _single(field.message_type.fields_by_name["value"], v) for k, v in value.items()}
    if field.is_repeated:
        return [_single(field, item) for item in value]
    return _single(field, value)


def _single(field: Field, value: Any) -> Any:
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return value
    if field.message_type.full_name == "google.protobuf.Timestamp":
        if not value.seconds and not value.nanos:
            return None
        return datetime.fromtimestamp(value.seconds + value.nanos / 1e9)
    return to_snake_dict(value)
