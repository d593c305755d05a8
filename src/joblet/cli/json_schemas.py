"""The JSON Schema of each rnx command's `--json` output, shipped in
`joblet/cli/schemas/` (docs/json.md). Derived from the proto messages with
the walk that prints them (`json_shape.schema_for`), so the two agree.

`python -m joblet.cli.json_schemas` rewrites the shipped files; a test fails
when they differ from what this module derives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent / "schemas"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

_STRING = {"type": "string"}
_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            # node: which one failed, when a command asked several
            "properties": {"code": _STRING, "message": _STRING, "node": _STRING},
            "required": ["code", "message"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}
_LOG = {
    "type": "object",
    "properties": {"data": _STRING},
    "required": ["data"],
    "additionalProperties": False,
}
_VERSION = {
    "type": "object",
    "properties": {
        "client": {
            "type": "object",
            "properties": {"version": _STRING},
            "required": ["version"],
        },
        "server": {
            "type": "object",
            "properties": {"version": {"type": ["string", "null"]}},
            "required": ["version"],
        },
        "error": {"type": "object", "properties": {"message": _STRING}},
    },
    "required": ["client", "server"],
    "additionalProperties": False,
}
_NODE = {
    "type": "object",
    "properties": {
        "name": _STRING,
        "address": _STRING,
        "server_name": _STRING,
        "selected": {"type": "boolean"},
        "error": _STRING,
        # what the node answered (absent with --no-probe)
        "reachable": {"type": "boolean"},
        "latency_ms": {"type": "number"},
        "version": _STRING,
        "node_id": _STRING,
        "active_jobs": {"type": "integer"},
        "free_gpus": {"type": ["integer", "null"]},
    },
    "required": ["name", "address", "server_name", "selected"],
    "additionalProperties": False,
}
_NODES = {
    "type": "object",
    "properties": {
        "config": _STRING,
        "selected": _STRING,
        "nodes": {"type": "array", "items": _NODE},
    },
    "required": ["config", "selected", "nodes"],
    "additionalProperties": False,
}

# Schema names of commands in a group (a file name holds no space).
_SUBCOMMANDS = {
    "network-list": "network list",
    "volume-list": "volume list",
    "monitor-status": "monitor status",
    "metrics": "job metrics",
}

# command -> (message whose shape it prints, or a fixed schema; what it prints)
_FROM_MESSAGES = {
    "run": ("RunJobResponse", "the accepted job; with -f, then log lines, then a status"),
    "status": ("GetJobStatusRes", "one job"),
    "wait": ("GetJobStatusRes", "each job once it has ended, one per line"),
    "list": ("Jobs", "the jobs that pass the filters, newest first"),
    "stop": ("StopJobRes", "each job stopped (also rnx kill)"),
    "cancel": ("CancelJobRes", "the canceled job"),
    "delete": ("DeleteJobRes", "the deleted job"),
    "delete-all": ("DeleteAllJobsRes", "what was deleted"),
    "network-list": ("Networks", "the networks"),
    "volume-list": ("Volumes", "the volumes"),
    "monitor-status": ("SystemStatusRes", "the host"),
    "metrics": ("JobMetricsSample", "one sample per line"),
}
_FIXED: dict[str, tuple[dict[str, Any], str]] = {
    "log": (_LOG, "one line per chunk of output (also between run -f's lines)"),
    "version": (_VERSION, "the client's and the server's versions"),
    "nodes": (_NODES, "the configured nodes"),
    "error": (_ERROR, "any failure, on stderr, under --json or --json-compat"),
}


def command_schemas() -> dict[str, dict[str, Any]]:
    """Every command's schema, by command name."""
    from joblet.api import joblet_pb2 as pb
    from joblet.cli.json_shape import schema_for

    schemas: dict[str, dict[str, Any]] = {}
    for command, (message, what) in _FROM_MESSAGES.items():
        body = schema_for(pb.DESCRIPTOR.message_types_by_name[message])
        schemas[command] = _document(command, what, body)
    for command, (body, what) in _FIXED.items():
        schemas[command] = _document(command, what, body)
    return schemas


def _document(command: str, what: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": DRAFT,
        "$id": f"rnx/{command}.schema.json",
        "title": f"rnx {_SUBCOMMANDS.get(command, command)} --json",
        "description": what,
        **body,
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(exist_ok=True)
    written = []
    for command, schema in command_schemas().items():
        path = directory / f"{command}.schema.json"
        path.write_text(render(schema))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(path, file=sys.stdout)
