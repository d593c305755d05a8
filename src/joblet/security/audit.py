"""The audit record of one RPC: who did what to which object, and how it ended.

Pure: a record is built from plain values and becomes one JSON line. Only
names the record needs leave a request (a job id, a network or volume name):
never the request itself, which may hold environment values and secrets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joblet.security.roles import VIEWER_METHODS

# Codes that mean "this caller may not": recorded for every method, reads too.
REFUSAL_CODES = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED"})
# A refusal's message is ours, but other errors may quote user input: keep it short.
MAX_MESSAGE = 200

# Where a method's object id is: ("request" | "response", field name).
_OBJECT_FIELDS: Mapping[str, tuple[str, str]] = {
    "/joblet.JobService/RunJob": ("response", "jobUuid"),
    "/joblet.JobService/StopJob": ("request", "uuid"),
    "/joblet.JobService/CancelJob": ("request", "uuid"),
    "/joblet.JobService/DeleteJob": ("request", "uuid"),
    "/joblet.JobService/RunWorkflow": ("response", "workflowUuid"),
    "/joblet.JobService/StopWorkflow": ("request", "workflowUuid"),
    "/joblet.JobService/DeleteWorkflow": ("request", "workflowUuid"),
    "/joblet.NetworkService/CreateNetwork": ("request", "name"),
    "/joblet.NetworkService/RemoveNetwork": ("request", "name"),
    "/joblet.VolumeService/CreateVolume": ("request", "name"),
    "/joblet.VolumeService/RemoveVolume": ("request", "name"),
    "/joblet.RuntimeService/TestRuntime": ("request", "runtime"),
    "/joblet.RuntimeService/RemoveRuntime": ("request", "runtime"),
    "/joblet.RuntimeService/InstallRuntimeFromGithub": ("request", "runtimeSpec"),
    "/joblet.RuntimeService/InstallRuntimeFromLocal": ("request", "runtimeSpec"),
    "/joblet.RuntimeService/StreamingInstallRuntimeFromGithub": ("request", "runtimeSpec"),
    "/joblet.RuntimeService/StreamingInstallRuntimeFromLocal": ("request", "runtimeSpec"),
}


@dataclass(frozen=True)
class AuditRecord:
    time: str  # RFC 3339, UTC
    cn: str
    role: str  # "" when the certificate names no known role
    peer: str
    rpc: str  # full method name
    object: str
    outcome: str  # gRPC status code name
    message: str = ""  # why, for anything but OK


def is_mutating(method: str) -> bool:
    """Whether `method` can change something (the viewer role may not call it)."""
    return method not in VIEWER_METHODS


def should_record(method: str, outcome: str) -> bool:
    """Every call of a mutating method, and every refused call of any method."""
    return is_mutating(method) or outcome in REFUSAL_CODES


def object_id(method: str, request: Any, response: Any) -> str:
    """The id or name of the object `method` acted on, "" when there is none."""
    where = _OBJECT_FIELDS.get(method)
    if where is None:
        return ""
    source = request if where[0] == "request" else response
    value = getattr(source, where[1], "")
    return value if isinstance(value, str) else ""


def rfc3339_now(now: float | None = None) -> str:
    """`now` (seconds since the epoch; the current time when None) as RFC 3339
    UTC with milliseconds. time.strftime: a third of what datetime costs, per call."""
    moment = time.time() if now is None else now
    whole = int(moment)
    millis = int((moment - whole) * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{millis:03d}Z"


def to_json_line(record: AuditRecord) -> str:
    fields = dict(vars(record))  # not asdict(): its deep copy costs more than the dump
    if not record.message:
        del fields["message"]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def from_json_line(line: str) -> AuditRecord:
    """A record from one line of the audit log; ValueError when it is not one."""
    raw = json.loads(line)
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    try:
        return AuditRecord(**{key: str(raw.get(key, "")) for key in _FIELDS})
    except TypeError as exc:
        raise ValueError(str(exc)) from exc


_FIELDS = tuple(AuditRecord.__dataclass_fields__)


def short_message(message: str) -> str:
    text = " ".join(message.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
