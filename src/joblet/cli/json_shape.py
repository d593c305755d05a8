"""rnx's own `--json` shape, the same for every command (docs/json.md):

- keys in snake_case, one spelling per field whatever the proto calls it
  (`uuid`, `jobUuid` -> `id`; `maxCPU`, `maxCpu` -> `max_cpu`);
- every field present, in the proto's declaration order (defaults included);
- 64-bit integers as JSON numbers (protobuf's JSON mapping makes them strings);
- times as the RFC 3339 strings the API carries; bytes as base64.

`schema_for` derives each message's JSON Schema from the same walk, so the
shipped schemas cannot drift from what is printed.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from google.protobuf.descriptor import Descriptor, FieldDescriptor
    from google.protobuf.message import Message

# Field names that mean the same thing under another proto name.
RENAMES = {"uuid": "id", "job_uuid": "id"}

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def json_key(proto_name: str) -> str:
    """`maxIOBPS` -> `max_iobps`, `jobUuid` -> `id`, `gpu_count` unchanged."""
    snake = _CAMEL_BOUNDARY.sub("_", proto_name).lower()
    return RENAMES.get(snake, snake)


def to_plain(message: Message) -> dict[str, Any]:
    """`message` as rnx's JSON object (see the module docstring)."""
    return {
        key: convert(getattr(message, name))
        for name, key, convert in _plan(cast("Descriptor", message.DESCRIPTOR))
    }


Converter = Callable[[Any], Any]


@functools.cache
def _plan(descriptor: Descriptor) -> tuple[tuple[str, str, Converter], ...]:
    """(proto name, JSON key, how to convert the value) per field, worked
    out once per message type: listings convert thousands of jobs."""
    return tuple((f.name, json_key(f.name), _field_converter(f)) for f in descriptor.fields)


def _message(field: FieldDescriptor) -> Descriptor:
    message = field.message_type
    assert message is not None, field.full_name  # only asked of message fields
    return message


def _map_value(field: FieldDescriptor) -> FieldDescriptor:
    return _message(field).fields_by_name["value"]


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and entry.GetOptions().map_entry


def _field_converter(field: FieldDescriptor) -> Converter:
    if _is_map(field):
        value = _scalar_converter(_map_value(field))
        return lambda mapping: {str(k): value(mapping[k]) for k in sorted(mapping)}
    scalar = _scalar_converter(field)
    if field.is_repeated:
        if scalar is _same:
            return list
        return lambda items: [scalar(item) for item in items]
    return scalar


def _same(value: Any) -> Any:
    return value


def _scalar_converter(field: FieldDescriptor) -> Converter:
    if field.type == field.TYPE_MESSAGE:
        return to_plain
    if field.type == field.TYPE_BYTES:
        return lambda data: base64.b64encode(data).decode("ascii")
    enum = field.enum_type
    if field.type == field.TYPE_ENUM and enum is not None:
        return lambda number: enum.values_by_number[number].name
    return _same


# ---- schemas ---------------------------------------------------------------

_FLOATS = frozenset({"TYPE_DOUBLE", "TYPE_FLOAT"})
_STRINGS = frozenset({"TYPE_STRING", "TYPE_BYTES", "TYPE_ENUM"})


def _type_name(field: FieldDescriptor) -> str:
    for name, number in vars(type(field)).items():
        if name.startswith("TYPE_") and number == field.type:
            return name
    return "TYPE_UNKNOWN"


def schema_for(descriptor: Descriptor) -> dict[str, Any]:
    """The JSON Schema of `to_plain` for messages of `descriptor`."""
    properties = {json_key(f.name): _field_schema(f) for f in descriptor.fields}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _field_schema(field: FieldDescriptor) -> dict[str, Any]:
    if _is_map(field):
        return {"type": "object", "additionalProperties": _scalar_schema(_map_value(field))}
    if field.is_repeated:
        return {"type": "array", "items": _scalar_schema(field)}
    return _scalar_schema(field)


def _scalar_schema(field: FieldDescriptor) -> dict[str, Any]:
    if field.type == field.TYPE_MESSAGE:
        return schema_for(_message(field))
    kind = _type_name(field)
    if kind == "TYPE_BOOL":
        return {"type": "boolean"}
    if kind in _FLOATS:
        return {"type": "number"}
    if kind in _STRINGS:
        return {"type": "string"}
    return {"type": "integer"}
