"""`--json-compat`: exactly the JSON the reference rnx prints, for the
commands where it prints any (list, run, status, log), so that `jq` recipes
written for it keep working. Elsewhere `--json-compat` means `--json`.

The reference is written in Go: its `encoding/json` escapes <, > and & in
strings, prints an empty slice or map it got from protobuf as `null`, drops
`omitempty` fields holding a zero value, and sorts the keys of a map.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_dumps(value: Any, *, indent: bool) -> str:
    """`value` as Go's json.Encoder writes it (with SetIndent("", "  ") if `indent`)."""
    text = json.dumps(
        value,
        ensure_ascii=False,
        indent=2 if indent else None,
        separators=(",", ": ") if indent else (",", ":"),
    )
    for raw, escaped in _GO_ESCAPES.items():  # only ever inside strings
        text = text.replace(raw, escaped)
    return text


def _omit_empty(pairs: Sequence[tuple[str, Any, bool]]) -> dict[str, Any]:
    """(key, value, omitempty) in struct order -> the object Go prints."""
    return {key: value for key, value, omit in pairs if not (omit and not value)}


def _nil(values: Sequence[Any] | Mapping[str, Any]) -> Any:
    """An empty repeated or map field, as Go holds it: nil, printed `null`."""
    if isinstance(values, Mapping):
        return dict(values) if values else None
    return list(values) if values else None


def list_json(jobs: Sequence[pb.Job]) -> str:
    if not jobs:
        return "[]"
    return go_dumps(list_entries(jobs), indent=True)


def list_entries(jobs: Sequence[pb.Job]) -> list[dict[str, Any]]:
    """The reference's list entries, as plain dicts."""
    return [_list_entry(job) for job in jobs]


def _list_entry(job: pb.Job) -> dict[str, Any]:
    return _omit_empty(
        [
            ("id", job.uuid, False),
            ("name", job.name, True),
            ("node_id", job.nodeId, True),
            ("status", job.status, False),
            ("start_time", job.startTime, False),
            ("end_time", job.endTime, True),
            ("command", job.command, False),
            ("args", list(job.args), True),
            ("exit_code", job.exitCode, True),
            ("max_cpu", job.maxCPU, True),
            ("max_memory", job.maxMemory, True),
            ("max_iobps", job.maxIOBPS, True),
            ("cpu_cores", job.cpuCores, True),
            ("scheduled_time", job.scheduledTime, True),
        ]
    )


def run_json(
    res: pb.RunJobResponse, schedule_input: str, files: int, env_vars: int, secret_env_vars: int
) -> str:
    return go_dumps(
        _omit_empty(
            [
                ("job_uuid", res.jobUuid, False),
                ("command", res.command, False),
                ("args", _nil(res.args), False),
                ("status", res.status, False),
                ("start_time", res.startTime, True),
                ("schedule_input", schedule_input, True),
                ("scheduled_time", res.scheduledTime, True),
                ("files_uploaded", files, True),
                ("env_vars", env_vars, True),
                ("secret_env_vars", secret_env_vars, True),
            ]
        ),
        indent=True,
    )


def status_json(res: pb.GetJobStatusRes) -> str:
    output: dict[str, Any] = {
        "uuid": res.uuid,
        "name": res.name,
        "command": res.command,
        "args": _nil(res.args),
        "status": res.status,
        "startTime": res.startTime,
        "endTime": res.endTime,
        "exitCode": res.exitCode,
        "scheduledTime": res.scheduledTime,
        "environment": _nil(res.environment),
        "secretEnvironment": _nil(res.secret_environment),
        "network": res.network,
        "volumes": _nil(res.volumes),
        "runtime": res.runtime,
        "workDir": res.workDir,
        "uploads": _nil(res.uploads),
        "dependencies": _nil(res.dependencies),
        "workflowUuid": res.workflowUuid,
    }
    optional = {
        "maxCPU": res.maxCPU,
        "maxMemory": res.maxMemory,
        "maxIOBPS": res.maxIOBPS,
        "cpuCores": res.cpuCores,
    }
    output.update((key, value) for key, value in optional.items() if value)
    return go_dumps(_sorted_map(output), indent=True)


def _sorted_map(value: Any) -> Any:
    """Go prints a map's keys sorted, nested maps too."""
    if isinstance(value, dict):
        return {key: _sorted_map(value[key]) for key in sorted(value)}
    return value


def log_line(data: bytes | memoryview, now: datetime, tz: tzinfo | None = None) -> str:
    """One chunk: `{"data": ..., "timestamp": ...}` (a Go map: keys sorted),
    the time being when rnx received it, as the reference's is."""
    text = bytes(data).decode("utf-8", errors="replace")
    stamp = now.astimezone(tz).isoformat(timespec="seconds").replace("+00:00", "Z")
    return go_dumps({"data": text, "timestamp": stamp}, indent=False)
