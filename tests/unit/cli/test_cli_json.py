"""`--json` and `--json-compat`: the shipped schemas match the output, golden
files pin both shapes, errors are JSON on stderr."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import Rnx

from joblet.api import joblet_pb2 as pb
from joblet.cli import json_compat
from joblet.cli.json_schemas import SCHEMA_DIR, command_schemas, render
from joblet.cli.json_shape import to_plain
from joblet.cli.main import main

GOLDEN = Path(__file__).parent / "golden"

JOB = pb.Job(
    uuid="0e5c8a47-6a51-4a0e-8a57-3c1c1f1b2f3a",
    name="nightly",
    command="sh",
    args=["-c", "echo <a> & b"],
    maxCPU=50,
    status="FAILED",
    startTime="2026-01-02T03:04:05Z",
    endTime="2026-01-02T03:04:09Z",
    exitCode=3,
    nodeId="node-1",
    endReason="exit code 3",
    maxIngressBitsPerSec=10_000_000_000,
)
STATUS = pb.GetJobStatusRes(
    uuid=JOB.uuid,
    name=JOB.name,
    command=JOB.command,
    args=JOB.args,
    maxCPU=50,
    status="FAILED",
    startTime=JOB.startTime,
    endTime=JOB.endTime,
    exitCode=3,
    secret_environment={"TOKEN": "***"},
    endReason="exit code 3",
)
RUN = pb.RunJobResponse(jobUuid=JOB.uuid, status="RUNNING", command="sleep", args=["5"],
                        startTime=JOB.startTime)  # fmt: skip


def _validate(command: str, doc: Any) -> None:
    jsonschema.validate(doc, command_schemas()[command])


def test_the_shipped_schemas_are_what_the_code_derives() -> None:
    derived = command_schemas()
    shipped = {p.name.removesuffix(".schema.json"): p.read_text() for p in SCHEMA_DIR.iterdir()}
    assert shipped == {name: render(schema) for name, schema in derived.items()}, (
        "run: python -m joblet.cli.json_schemas"
    )
    for schema in derived.values():
        jsonschema.Draft202012Validator.check_schema(schema)


def _golden(name: str, text: str) -> None:
    assert (GOLDEN / name).read_text() == text + "\n"


def test_golden_json() -> None:
    doc = {
        "list": to_plain(pb.Jobs(jobs=[JOB])),
        "status": to_plain(STATUS),
        "run": to_plain(RUN),
    }
    for command, value in doc.items():
        _validate(command, value)
    assert doc["list"]["jobs"][0]["max_ingress_bits_per_sec"] == 10_000_000_000
    _golden("json.json", json.dumps(doc, indent=2))


def test_golden_json_compat() -> None:
    _golden("compat-list.json", json_compat.list_json([JOB]))
    _golden("compat-status.json", json_compat.status_json(STATUS))
    _golden("compat-run.json", json_compat.run_json(RUN, "", 0, 1, 0))
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    line = json_compat.log_line(b"a<b>\n\xff", at, UTC)
    _golden("compat-log.json", line)
    assert json_compat.list_json([]) == "[]"


def test_compat_keeps_the_reference_keys() -> None:
    (listed,) = json.loads(json_compat.list_json([JOB]))
    assert list(listed)[:5] == ["id", "name", "node_id", "status", "start_time"]
    run = json.loads(json_compat.run_json(RUN, "1hour", 2, 0, 0))
    assert run["job_uuid"] == JOB.uuid and run["schedule_input"] == "1hour"
    assert "env_vars" not in run  # omitempty
    status = json.loads(json_compat.status_json(pb.GetJobStatusRes(uuid="u")))
    assert status["args"] is None and "maxCPU" not in status
    assert list(status) == sorted(status)


def test_errors_under_json_are_json_on_stderr(rnx: Rnx, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = rnx("--json", "status", "nope")
    assert code == 1 and out == ""
    doc = json.loads(err)
    _validate("error", doc)
    assert doc["error"]["code"] == "NOT_FOUND" and "nope" in doc["error"]["message"]
    assert main(["--json-compat", "lsit"]) == 2
    doc = json.loads(capsys.readouterr().err)
    assert doc["error"]["code"] == "USAGE" and "did you mean" in doc["error"]["message"]


def test_cli_outputs_validate(rnx: Rnx) -> None:
    _, out, _ = rnx("--json", "run", "echo", "hi")
    run = json.loads(out)
    _validate("run", run)
    _validate("status", json.loads(rnx("--json", "status", run["id"])[1]))
    _validate("list", json.loads(rnx("--json", "list")[1]))
    for line in rnx("--json", "log", run["id"])[1].splitlines():
        _validate("log", json.loads(line))
    _validate("delete", json.loads(rnx("--json", "rm", run["id"])[1]))
    _validate("nodes", json.loads(rnx("--json", "nodes")[1]))
