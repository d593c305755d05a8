"""Message types that read or write the wire form of metric messages
differently from the generated classes, built at import (not part of any API).

Field numbers and types are copied from the generated descriptors, so these
cannot drift from the real messages. Two protobuf rules make them useful:

* `repeated JobMetricsSample samples = 1` and `repeated bytes samples = 1`
  have the same wire form, so `RawSamples` turns stored sample bytes into a
  JobMetricsHistoryResponse in C, without parsing them.
* A singular message field that occurs many times is merged into one, and
  merging appends repeated fields. So when the field of a repeated message
  (a response's samples) is declared singular, and that message's scalar
  fields repeated, one parse collects every sample's value of a field into one
  list, in C. proto3 leaves zero values off the wire, so such a list holds the
  non-zero values only (in sample order).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory

from joblet.api import joblet_pb2 as pb
from joblet.api import persist_pb2

PACKAGE = "joblet.metrics.views"
_FIELD = descriptor_pb2.FieldDescriptorProto
_FILE = descriptor_pb2.FileDescriptorProto(
    name="joblet/metrics/views.proto", package=PACKAGE, syntax="proto3"
)

# What a summary reads of a sample (summary.point).
SUMMARY_FIELDS = {
    "cpu": ("usagePercent",),
    "memory": ("current",),
    "io": ("readBPS", "writeBPS"),
    "network": ("rxBPS", "txBPS"),
}


def _message(name: str) -> descriptor_pb2.DescriptorProto:
    message: descriptor_pb2.DescriptorProto = _FILE.message_type.add(name=name)
    return message


def _copy(
    into: descriptor_pb2.DescriptorProto, field: descriptor.FieldDescriptor, *, repeated: bool
) -> None:
    label = _FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL
    into.field.add(name=field.name, number=field.number, type=field.type, label=label)


def _nested(
    into: descriptor_pb2.DescriptorProto, name: str, number: int, type_name: str, *, repeated: bool
) -> None:
    into.field.add(
        name=name, number=number, type=_FIELD.TYPE_MESSAGE, type_name=f".{PACKAGE}.{type_name}",
        label=_FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL,
    )  # fmt: skip


def _build() -> None:
    raw = _message("RawSamples")
    raw.field.add(name="samples", number=1, type=_FIELD.TYPE_BYTES, label=_FIELD.LABEL_REPEATED)

    sample = pb.JobMetricsSample.DESCRIPTOR
    # One message per sample, with only the summary's fields.
    view = _message("SampleView")
    _copy(view, sample.fields_by_name["timestamp"], repeated=False)
    # Every sample merged into one: cpu and memory values collected in lists;
    # io and network one element per sample that has them (their two rates
    # are summed per sample).
    merged = _message("MergedSamples")
    _copy(merged, sample.fields_by_name["timestamp"], repeated=True)
    for part, names in SUMMARY_FIELDS.items():
        outer = sample.fields_by_name[part]
        assert outer.message_type is not None
        single, listed = _message(f"{part}View"), _message(f"{part}Lists")
        for name in names:
            _copy(single, outer.message_type.fields_by_name[name], repeated=False)
            _copy(listed, outer.message_type.fields_by_name[name], repeated=True)
        _nested(view, part, outer.number, f"{part}View", repeated=False)
        if len(names) == 1:
            _nested(merged, part, outer.number, f"{part}Lists", repeated=False)
        else:
            _nested(merged, part, outer.number, f"{part}View", repeated=True)
    history = _message("HistoryView")
    _nested(history, "samples", 1, "SampleView", repeated=True)
    merged_history = _message("MergedHistory")
    _nested(merged_history, "samples", 1, "MergedSamples", repeated=False)

    # persist's QueryMetricsResponse, its samples merged: timestamps and
    # payloads in two lists.
    stored = persist_pb2.MetricSample.DESCRIPTOR
    stored_lists = _message("StoredLists")
    for field in stored.fields:
        _copy(stored_lists, field, repeated=True)
    stored_response = _message("StoredResponse")
    samples = persist_pb2.QueryMetricsResponse.DESCRIPTOR.fields_by_name["samples"]
    _nested(stored_response, "samples", samples.number, "StoredLists", repeated=False)


_build()
_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_FILE)


def _class(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


RawSamples: Any = _class("RawSamples")
HistoryView: Any = _class("HistoryView")
MergedHistory: Any = _class("MergedHistory")
StoredResponse: Any = _class("StoredResponse")
