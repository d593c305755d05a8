"""`--json` and `--json-compat` through a real daemon, validated against the
shipped schemas."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from joblet.cli.json_schemas import SCHEMA_DIR

from .conftest import RunningDaemon


def _schema(command: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMA_DIR / f"{command}.schema.json").read_text())
    return loaded


def _valid(command: str, doc: Any) -> Any:
    jsonschema.validate(doc, _schema(command))
    return doc


def test_json_outputs_match_their_schemas(daemon: RunningDaemon) -> None:
    run = daemon.rnx("--json", "run", "-f", "--name", "json-run", "sh", "-c", "echo hi; exit 2")
    assert run.returncode == 2
    first, *logs, last = (json.loads(line) for line in run.stdout.splitlines())
    job_id = _valid("run", first)["id"]
    assert [_valid("log", line) for line in logs] == [{"data": "hi\n"}]
    assert _valid("status", last)["end_reason"] == "exit code 2" and last["exit_code"] == 2
    listed = _valid("list", json.loads(daemon.rnx("ps", "--json", "--name", "json-run").stdout))
    assert [job["id"] for job in listed["jobs"]] == [job_id]
    waited = json.loads(daemon.rnx("--json", "wait", job_id).stdout)
    assert _valid("wait", waited)["status"] == "FAILED"
    assert _valid("delete", json.loads(daemon.rnx("--json", "rm", job_id).stdout))["success"]
    version = _valid("version", json.loads(daemon.rnx("--json", "version").stdout))
    assert version["server"]["version"] and version["client"]["version"]


def test_errors_are_json_on_stderr(daemon: RunningDaemon) -> None:
    res = daemon.rnx("--json", "status", "no-such-job")
    assert res.returncode == 1 and res.stdout == b""
    error = _valid("error", json.loads(res.stderr))["error"]
    assert error["code"] == "NOT_FOUND" and "no-such-job" in error["message"]


def test_json_compat_prints_the_reference_shapes(daemon: RunningDaemon) -> None:
    run = json.loads(daemon.rnx("--json-compat", "run", "--name", "compat", "echo", "<x>").stdout)
    assert list(run)[:4] == ["job_uuid", "command", "args", "status"]
    job_id = run["job_uuid"]
    assert json.loads(daemon.rnx("wait", job_id).stdout) == 0
    listed = json.loads(daemon.rnx("--json-compat", "list", "--name", "compat").stdout)
    assert isinstance(listed, list) and listed[0]["id"] == job_id
    assert {"id", "node_id", "status", "start_time", "command"} <= set(listed[0])
    logs = daemon.rnx("--json-compat", "log", job_id).stdout.splitlines()
    assert [sorted(json.loads(line)) for line in logs] == [["data", "timestamp"]]
    assert b"\\u003cx\\u003e" in logs[0]  # escaped as Go escapes it
    status = json.loads(daemon.rnx("--json-compat", "status", job_id).stdout)
    assert status["uuid"] == job_id and status["exitCode"] == 0 and list(status) == sorted(status)
