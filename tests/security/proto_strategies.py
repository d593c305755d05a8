"""Hypothesis strategies that build any protobuf message from its descriptor:
strings with NUL and control characters, the extreme values of every integer
width, random (also unknown) enum numbers, nested messages, repeated and map
fields. Sizes stay bounded so a run's time and the daemon's memory stay sane.
`overrides` replaces the strategy of chosen fields (by "Message.field"), which
is how a caller keeps e.g. a job's command harmless."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

# Strings that mean something to some part of the daemon: names, paths,
# addresses, schedules, sizes, CPU lists, users; and their broken twins.
SPECIAL_STRINGS = (
    "", " ", "\x00", "a\x00b", "\n", "\r\n", "\t", "\x1b[2J", "\x7f", "\u202e", "🙂",
    ".", "..", "../escape", "a/../../escape", "/abs/escape", "//", "-", "--", "-1",
    "0", "1", "99999999999999999999999", "1e308", "nan", "%s%n", "{}", "[]",
    "bridge", "none", "host", "isolated", "default", "10.0.0.0/8", "10.9.0.0/33",
    "0.0.0.0/0", "::/0", "1s", "0s", "-5m", "1h30m", "2999-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z", "0-1", "0,1,9999", "5-2", "1MB", "-1GB", "1EB",
    "memory", "filesystem", "root", "0:0", "65534", "4294967295:1", "x" * 300,
    "stdout", "stderr", "cpu", "ALL",
)  # fmt: skip
INT_BOUNDS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
MAX_DEPTH = 3
MAX_ITEMS = 4

Overrides = Mapping[str, st.SearchStrategy[Any]]


def texts() -> st.SearchStrategy[str]:
    # Surrogates cannot be UTF-8 encoded, so no client could send them.
    random = st.text(st.characters(codec="utf-8"), max_size=40)
    return st.one_of(st.sampled_from(SPECIAL_STRINGS), random)


def integers(field_type: int) -> st.SearchStrategy[int]:
    low, high = INT_BOUNDS[field_type]
    edges = sorted({low, high, 0, 1, -1 if low < 0 else 2, high // 2, low // 2})
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def enums(enum: EnumDescriptor) -> st.SearchStrategy[int]:
    known = [value.number for value in enum.values]
    return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return texts()
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=256)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return enums(field.enum_type)
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats()
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    return integers(kind)


def field_values(
    field: FieldDescriptor, overrides: Overrides, depth: int
) -> st.SearchStrategy[Any]:
    """Values for one field as `Message(**{name: value})` takes them."""
    assert field.containing_type is not None
    key = f"{field.containing_type.name}.{field.name}"
    if key in overrides:
        return overrides[key]
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        keys = field.message_type.fields_by_name["key"]
        values = field.message_type.fields_by_name["value"]
        return st.dictionaries(
            field_values(keys, overrides, depth), field_values(values, overrides, depth),
            max_size=MAX_ITEMS,
        )  # fmt: skip
    if field.message_type is not None:
        single: st.SearchStrategy[Any] = messages(field.message_type, overrides, depth + 1)
    else:
        single = scalar(field)
    if field.is_repeated:
        return st.lists(single, max_size=MAX_ITEMS)
    return single


def messages(
    descriptor: Descriptor, overrides: Overrides | None = None, depth: int = 0
) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`'s type; each field set or left at its default."""
    cls = GetMessageClass(descriptor)
    fields = overrides or {}
    if depth >= MAX_DEPTH:
        return st.just(cls())
    optional = {
        field.name: field_values(field, fields, depth)
        for field in descriptor.fields
        if f"{descriptor.name}.{field.name}" not in fields
    }
    required = {
        field.name: fields[f"{descriptor.name}.{field.name}"]
        for field in descriptor.fields
        if f"{descriptor.name}.{field.name}" in fields
    }
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: cls(**kw))


def mutations(base: Message, overrides: Overrides | None = None) -> st.SearchStrategy[Message]:
    """`base` (a request that gets past validation) as it is or with one field
    replaced by a fuzzed value: reaches the code behind the checks that a
    message fuzzed everywhere at once never passes."""
    fields = overrides or {}
    choices: list[FieldDescriptor] = [*base.DESCRIPTOR.fields]

    @st.composite
    def mutate(draw: st.DrawFn) -> Message:
        message = type(base)()
        message.CopyFrom(base)
        field = draw(st.one_of(st.none(), st.sampled_from(choices)))
        if field is None:
            return message
        value = draw(field_values(field, fields, 1))
        message.ClearField(field.name)
        message.MergeFrom(type(base)(**{field.name: value}))
        return message

    return mutate()
