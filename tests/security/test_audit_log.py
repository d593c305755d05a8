"""The audit log of a real daemon: what a RunJob, a refused RunJob and a
StopJob leave in ROOT/logs/audit.log, that no secret gets there, and what
`joblet audit` shows of it."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = pytest.mark.integration

SECRET = "s3cret-value-7f1e"
PLAIN_VALUE = "plain-value-91ad"


def _lines(daemon: RunningDaemon) -> list[dict[str, Any]]:
    text = (daemon.root / "logs" / "audit.log").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _audit(daemon: RunningDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["audit", "--config", str(daemon.config_path), *args]
    return subprocess.run(
        [sys.executable, "-m", "joblet.daemon.main", *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def calls(daemon: RunningDaemon) -> str:
    """Admin runs a job with a secret, the viewer tries to, admin stops it: its id."""
    admin = daemon.jobs()
    request = pb.RunJobRequest(
        command="sleep", args=["60"], name="audited",
        environment={"PLAIN": PLAIN_VALUE}, secret_environment={"TOKEN": SECRET},
    )  # fmt: skip
    job_id = str(admin.RunJob(request).jobUuid)
    with pytest.raises(grpc.RpcError) as refused:
        daemon.jobs("viewer").RunJob(request)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    wait_status(admin, job_id, {"RUNNING"})
    admin.StopJob(pb.StopJobReq(uuid=job_id))
    return job_id


def test_run_denied_run_and_stop_are_three_lines_with_their_fields(
    daemon: RunningDaemon, calls: str
) -> None:
    mine = [
        line for line in _lines(daemon)
        if line["object"] == calls or line["outcome"] == "PERMISSION_DENIED"
    ]  # fmt: skip
    assert [(line["rpc"], line["cn"], line["role"], line["outcome"]) for line in mine] == [
        ("/joblet.JobService/RunJob", "admin", "admin", "OK"),
        ("/joblet.JobService/RunJob", "viewer", "viewer", "PERMISSION_DENIED"),
        ("/joblet.JobService/StopJob", "admin", "admin", "OK"),
    ]
    run, denied, stop = mine
    assert run["object"] == stop["object"] == calls
    assert denied["message"] == "role viewer may not call RunJob"
    assert "message" not in run
    for line in mine:
        assert line["peer"].startswith(("ipv4:", "ipv6:"))
        moment = datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
        assert line["time"].endswith("Z")
        assert abs(datetime.now(UTC) - moment) < timedelta(minutes=10)


def test_reads_are_not_recorded_and_the_file_is_private(daemon: RunningDaemon, calls: str) -> None:
    daemon.jobs("viewer").GetJobStatus(pb.GetJobStatusReq(uuid=calls))
    daemon.jobs().ListJobs(pb.EmptyRequest())
    rpcs = {line["rpc"].rsplit("/", 1)[-1] for line in _lines(daemon)}
    assert not rpcs & {"GetJobStatus", "ListJobs"}
    mode = (daemon.root / "logs" / "audit.log").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_no_environment_value_reaches_the_file(daemon: RunningDaemon, calls: str) -> None:
    data = (daemon.root / "logs" / "audit.log").read_bytes()
    assert SECRET.encode() not in data
    assert PLAIN_VALUE.encode() not in data
    assert b"TOKEN" not in data


def test_joblet_audit_filters(daemon: RunningDaemon, calls: str) -> None:
    denied = _audit(daemon, "--cn", "viewer", "--outcome", "DENIED", "--json")
    assert denied.returncode == 0, denied.stderr
    (line,) = [json.loads(text) for text in denied.stdout.splitlines()]
    assert line["rpc"] == "/joblet.JobService/RunJob" and line["role"] == "viewer"

    stops = _audit(daemon, "--rpc", "StopJob", "--since", "10m", "--json").stdout.splitlines()
    assert [json.loads(text)["object"] for text in stops] == [calls]
    assert _audit(daemon, "--rpc", "StopJob", "--outcome", "DENIED").stdout.splitlines() == [
        _audit(daemon, "--rpc", "NoSuchRpc").stdout.splitlines()[0]
    ]  # the header alone

    table = _audit(daemon, "--cn", "admin", "--outcome", "OK").stdout.splitlines()
    assert table[0].split() == ["TIME", "CN", "ROLE", "RPC", "OBJECT", "OUTCOME", "PEER", "MESSAGE"]
    assert any(row.split()[3:6] == ["RunJob", calls, "OK"] for row in table[1:])
    assert all(row.split()[1] == "admin" for row in table[1:])

    bad = _audit(daemon, "--outcome", "MAYBE")
    assert bad.returncode == 2 and "MAYBE" in bad.stderr and "Traceback" not in bad.stderr
