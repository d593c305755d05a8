"""A `Job` as a plain dict or JSON bytes and back: the record the state helper stores.

The conversion is driven by the dataclasses' own type hints, so a field added to
`Job` or `JobSpec` is stored without touching this module. Stable across
versions:

- unknown keys are ignored (a record written by a newer daemon still loads);
- missing keys take the field's default (a record written by an older daemon
  still loads); only fields without a default (`Job.id`, `Job.status`, ...) are
  required.

What is left out: the *content* of uploads. An upload is written into the job's
workspace on disk when the job is submitted, so the record keeps each upload's
path, mode, kind and size only; a loaded `Upload` has `content == b""`. This
keeps records small (a 100 MB upload must not travel to Redis on every status
change). Secret environment variables are kept, because a queued or scheduled
job needs them to run after a restart: the state store is as sensitive as the
config file.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import types
from collections.abc import Callable
from enum import Enum
from functools import cache
from typing import Any, Union, get_args, get_origin, get_type_hints

from joblet.errors import JobletError
from joblet.jobs.model import Job, Upload

SCHEMA_VERSION = 1
_VERSION_KEY = "_v"
# (class, field) pairs never written to the record; see the module docstring.
# A staged upload's source and size only mean something until it is written.
_EXCLUDED = frozenset({(Upload, "content"), (Upload, "source"), (Upload, "size")})
_EXCLUDED_DEFAULTS: dict[tuple[type, str], Any] = {
    (Upload, "content"): b"",
    (Upload, "source"): "",
    (Upload, "size"): 0,
}


class SerializationError(JobletError):
    """A stored record cannot be turned back into a `Job`."""


def job_to_dict(job: Job) -> dict[str, Any]:
    """`job` as JSON-compatible data (str keys; str, int, float, bool, list, dict, None)."""
    data = _encode_dataclass(job)
    data[_VERSION_KEY] = SCHEMA_VERSION
    return data


def job_from_dict(data: dict[str, Any]) -> Job:
    """The `Job` a `job_to_dict` result (of this or another version) describes."""
    if not isinstance(data, dict):
        raise SerializationError(f"a job record must be an object, not {type(data).__name__}")
    job = _decode(data, Job, "job")
    assert isinstance(job, Job)
    return job


# One encoder for every record: json.dumps with options builds a new one per call.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def job_to_json(job: Job) -> bytes:
    return _JSON.encode(job_to_dict(job)).encode()


def job_from_json(blob: bytes) -> Job:
    try:
        data = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SerializationError(f"job record is not valid JSON: {exc}") from exc
    return job_from_dict(data)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


_PLAIN = frozenset({str, int, float, bool, type(None)})


@cache
def _stored_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if (cls, f.name) not in _EXCLUDED)


def _encode(value: Any) -> Any:
    # Exact-type check first: this runs once per field of every event.
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    if hasattr(type(value), "__dataclass_fields__"):
        return _encode_dataclass(value)
    if isinstance(value, bytes):
        raise SerializationError("bytes fields are not storable; exclude them explicitly")
    return value


def _encode_dataclass(value: Any) -> dict[str, Any]:
    cls: type = type(value)
    plan = _encoding_plan(cls)
    values = plan.get_all(value)
    out = dict(zip(plan.names, values, strict=True))
    for index, name, convert in plan.conversions:
        item = values[index]
        if item is not None:
            out[name] = convert(item)
    for name, default in plan.defaults:
        stored = out[name]
        if type(stored) is type(default) and stored == default:
            del out[name]
    if cls is Upload:
        out["content_size"] = value.byte_size
    return out


Convert = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class _EncodingPlan:
    names: tuple[str, ...]  # the stored fields, in order
    get_all: Callable[[Any], tuple[Any, ...]]  # their values, read in one call
    conversions: tuple[tuple[int, str, Convert], ...]  # fields not JSON data as they are
    # Fields left out when they hold their default (as encoded): most of a
    # record is defaults, and a restart decodes every record it keeps (a
    # finished job's record is a third of the size, twice as fast to load).
    # Any version's decoder fills a missing optional field with its default.
    defaults: tuple[tuple[str, Any], ...]


@cache
def _encoding_plan(cls: type) -> _EncodingPlan:
    """How to encode a `cls`, worked out once from its type hints: a record is
    written on every status change, so this runs per event."""
    hints = _hints(cls)
    names = _stored_fields(cls)
    converters = [(index, name, _converter(hints[name])) for index, name in enumerate(names)]
    return _EncodingPlan(
        names=names,
        get_all=_getter(names),
        conversions=tuple((i, n, c) for i, n, c in converters if c is not None),
        defaults=_encoded_defaults(cls, {n: c for _i, n, c in converters}),
    )


def _encoded_defaults(
    cls: type, converters: dict[str, Convert | None]
) -> tuple[tuple[str, Any], ...]:
    """Each stored field with a default, and that default as it is encoded."""
    found: list[tuple[str, Any]] = []
    for field in dataclasses.fields(cls):
        if field.name not in converters:
            continue  # excluded from storage
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            continue  # required: always stored
        convert = converters[field.name]
        found.append(
            (field.name, default if default is None or convert is None else convert(default))
        )
    return tuple(found)


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) == 1:  # attrgetter of one name returns the value, not a 1-tuple
        return lambda value: (getattr(value, names[0]),)
    return operator.attrgetter(*names)


def _converter(hint: Any) -> Convert | None:
    """How to encode a value of type `hint`; None when it is JSON data already.
    A value that is None (an Optional field) is always kept as None."""
    origin, args, is_dataclass, is_enum = _shape(hint)
    if hint in _PLAIN:
        return None
    if origin in (Union, types.UnionType):
        options = [option for option in args if option is not type(None)]
        return _converter(options[0]) if len(options) == 1 else _encode
    if origin is tuple and all(arg in _PLAIN or arg is Ellipsis for arg in args):
        return list
    if origin is dict and all(arg in _PLAIN for arg in args):
        return dict
    if is_dataclass:
        return _encode_dataclass
    if is_enum:
        return _enum_value
    return _encode  # anything else: the general, type-testing path


def _enum_value(value: Enum) -> Any:
    return value.value


@cache
def _shape(hint: Any) -> tuple[Any, tuple[Any, ...], bool, bool]:
    """A hint's origin and arguments, and whether it is a dataclass or an Enum:
    worked out once per hint, not once per value (a restart decodes every job)."""
    is_class = isinstance(hint, type)
    return (
        get_origin(hint),
        get_args(hint),
        is_class and dataclasses.is_dataclass(hint),
        is_class and issubclass(hint, Enum),
    )


def _decode(raw: Any, hint: Any, where: str) -> Any:
    if type(raw) is hint and hint in _PLAIN:  # the common case: a str, int, bool...
        return raw
    origin, args, is_dataclass, is_enum = _shape(hint)
    if origin in (Union, types.UnionType):
        return _decode_union(raw, args, where)
    if origin is tuple:
        return _decode_tuple(raw, args, where)
    if origin is dict:
        key_hint, value_hint = args
        _expect(raw, dict, where)
        return {
            _decode(k, key_hint, where): _decode(v, value_hint, f"{where}.{k}")
            for k, v in raw.items()
        }
    if is_dataclass:
        return _decode_dataclass(raw, hint, where)
    if is_enum:
        try:
            return hint(raw)
        except ValueError as exc:
            raise SerializationError(f"{where}: unknown {hint.__name__} {raw!r}") from exc
    return _decode_scalar(raw, hint, where)


def _decode_union(raw: Any, options: tuple[Any, ...], where: str) -> Any:
    if raw is None and type(None) in options:
        return None
    others = [option for option in options if option is not type(None)]
    errors = []
    for option in others:
        try:
            return _decode(raw, option, where)
        except SerializationError as exc:
            errors.append(str(exc))
    raise SerializationError("; ".join(errors) or f"{where}: no type accepts {raw!r}")


def _decode_tuple(raw: Any, args: tuple[Any, ...], where: str) -> tuple[Any, ...]:
    _expect(raw, list, where)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(item, args[0], f"{where}[{i}]") for i, item in enumerate(raw))
    if len(raw) != len(args):
        raise SerializationError(f"{where}: expected {len(args)} items, got {len(raw)}")
    return tuple(
        _decode(item, arg, f"{where}[{i}]")
        for i, (item, arg) in enumerate(zip(raw, args, strict=True))
    )


@cache
def _field_plan(
    cls: type,
) -> tuple[tuple[str, Any, Callable[[Any], Any] | None, bool, bool], ...]:
    """Per field: name, type hint, its fast decoder (None for a plain type: the
    value is taken as it is when its type is exactly the hint), excluded from
    storage, required."""
    hints = _hints(cls)
    return tuple(
        (
            f.name,
            hints[f.name],
            None if hints[f.name] in _PLAIN else _fast_decoder(hints[f.name]),
            (cls, f.name) in _EXCLUDED,
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )


def _decode_dataclass(raw: Any, cls: type, where: str) -> Any:
    _expect(raw, dict, where)
    kwargs: dict[str, Any] = {}
    for name, hint, fast, excluded, required in _field_plan(cls):
        if excluded:
            kwargs[name] = _EXCLUDED_DEFAULTS[(cls, name)]
        elif name in raw:
            value = raw[name]
            if type(value) is not hint:
                value = _UNDECIDED if fast is None else fast(value)
                if value is _UNDECIDED:  # the general path, which also names what is wrong
                    value = _decode(raw[name], hint, f"{where}.{name}")
            kwargs[name] = value
        elif required:
            raise SerializationError(f"{where}: required field {name!r} is missing")
    return cls(**kwargs)


# Loading every record at a daemon start runs the decoder ~40 times per job; a
# fast decoder takes the common, well-formed value straight and leaves anything
# else (conversions, errors and their messages) to `_decode`.
_UNDECIDED = object()


def _fast_decoder(hint: Any) -> Callable[[Any], Any]:
    origin, args, is_dataclass, is_enum = _shape(hint)
    if hint in _PLAIN:
        return lambda raw: raw if type(raw) is hint else _UNDECIDED
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = _fast_decoder(args[0] if args[1] is type(None) else args[1])
        return lambda raw: None if raw is None else inner(raw)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in _PLAIN:
        item = args[0]
        return lambda raw: (
            tuple(raw) if type(raw) is list and all(type(x) is item for x in raw) else _UNDECIDED
        )
    if origin is tuple and args and all(arg in _PLAIN for arg in args):
        return lambda raw: (
            tuple(raw)
            if type(raw) is list
            and len(raw) == len(args)
            and all(type(x) is arg for x, arg in zip(raw, args, strict=True))
            else _UNDECIDED
        )
    if origin is dict and args and all(arg in _PLAIN for arg in args):
        key, value = args
        return lambda raw: (
            dict(raw)
            if type(raw) is dict
            and all(type(k) is key and type(v) is value for k, v in raw.items())
            else _UNDECIDED
        )
    if is_enum:
        members = {member.value: member for member in hint}
        return lambda raw: members.get(raw, _UNDECIDED) if type(raw) in _PLAIN else _UNDECIDED
    if is_dataclass:
        return lambda raw: _fast_dataclass(raw, hint)
    return lambda raw: _UNDECIDED


def _fast_dataclass(raw: Any, cls: type) -> Any:
    if type(raw) is not dict:
        return _UNDECIDED
    try:
        return _decode_dataclass(raw, cls, "")
    except SerializationError:
        return _UNDECIDED  # decoded again on the general path, for a message with its path


def _decode_scalar(raw: Any, hint: Any, where: str) -> Any:
    if hint is Any:
        return raw
    if hint is float and isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if hint is int and isinstance(raw, bool):
        raise SerializationError(f"{where}: expected int, got bool")
    if isinstance(hint, type) and isinstance(raw, hint):
        return raw
    name = getattr(hint, "__name__", repr(hint))
    raise SerializationError(f"{where}: expected {name}, got {type(raw).__name__}")


def _expect(raw: Any, kind: type, where: str) -> None:
    if not isinstance(raw, kind):
        raise SerializationError(f"{where}: expected {kind.__name__}, got {type(raw).__name__}")
