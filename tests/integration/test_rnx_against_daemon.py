"""`rnx` as a user runs it, against a real daemon over mTLS."""

from __future__ import annotations

import json
import re

from .conftest import RunningDaemon

UUID_LINE = re.compile(rb"^ID: ([0-9a-f-]{36})$", re.MULTILINE)


def _job_id(stdout: bytes) -> str:
    match = UUID_LINE.search(stdout)
    assert match, stdout
    return match.group(1).decode()


def test_run_prints_id_and_status_lines(daemon: RunningDaemon) -> None:
    res = daemon.rnx("job", "run", "echo", "hi")
    assert res.returncode == 0, res.stderr
    assert re.search(rb"^Status: (RUNNING|COMPLETED)$", res.stdout, re.MULTILINE)
    job_id = _job_id(res.stdout)
    log = daemon.rnx("job", "log", job_id)
    assert (log.returncode, log.stdout) == (0, b"hi\n")
    status = daemon.rnx("job", "status", job_id[:8])
    assert status.returncode == 0
    assert f"Job ID: {job_id}".encode() in status.stdout
    assert b"Status: COMPLETED" in status.stdout
    assert b"Exit Code: 0" in status.stdout


def test_follow_streams_output_and_exits_with_job_code(daemon: RunningDaemon) -> None:
    res = daemon.rnx("run", "-f", "python3", "-c", "import sys; print(1); sys.exit(7)")
    assert res.returncode == 7
    assert res.stdout == b"1\n"
    killed = daemon.rnx("run", "-f", "sh", "-c", "kill -9 $$")
    assert killed.returncode == 137


def test_arguments_after_command_belong_to_the_job(daemon: RunningDaemon) -> None:
    res = daemon.rnx("run", "-f", "ls", "-la", "--", "/work")
    assert res.returncode == 0, res.stderr
    assert b"total" in res.stdout


def test_list_and_json(daemon: RunningDaemon) -> None:
    job_id = _job_id(daemon.rnx("run", "--name", "listed", "true").stdout)
    table = daemon.rnx("list")
    assert table.returncode == 0
    assert job_id[:8].encode() in table.stdout and b"listed" in table.stdout
    assert job_id.encode() in daemon.rnx("list", "--no-trunc").stdout
    as_json = daemon.rnx("--json", "job", "status", job_id)
    doc = json.loads(as_json.stdout)
    assert doc["id"] == job_id and "max_cpu" in doc and "secret_environment" in doc


def test_secret_env_masked_in_cli_output(daemon: RunningDaemon) -> None:
    res = daemon.rnx("run", "-f", "-s", "TOKEN=hunter2", "sh", "-c", "echo ${#TOKEN}")
    assert res.stdout == b"7\n"  # --follow: the job's output only; ID and Status on stderr
    job_id = _job_id(res.stderr)
    assert b"hunter2" not in daemon.rnx("--json", "list").stdout
    status = daemon.rnx("status", job_id).stdout
    assert b"TOKEN" in status and b"***" in status and b"hunter2" not in status


def test_stop_cancel_delete(daemon: RunningDaemon) -> None:
    running = _job_id(daemon.rnx("run", "sleep", "60").stdout)
    assert daemon.rnx("stop", running).returncode == 0
    assert b"STOPPED" in daemon.rnx("status", running).stdout
    scheduled = _job_id(daemon.rnx("run", "--schedule", "1h", "true").stdout)
    assert daemon.rnx("job", "cancel", scheduled).returncode == 0
    assert b"CANCELED" in daemon.rnx("status", scheduled).stdout
    assert daemon.rnx("job", "delete", running).returncode == 0
    gone = daemon.rnx("status", running)
    assert gone.returncode != 0
    assert gone.stderr.count(b"\n") == 1 and b"not found" in gone.stderr
    assert b"Traceback" not in gone.stderr
    assert daemon.rnx("job", "delete-all").returncode == 0


def test_viewer_is_refused_with_one_line(daemon: RunningDaemon) -> None:
    assert daemon.rnx("list", node="viewer").returncode == 0
    res = daemon.rnx("run", "true", node="viewer")
    assert res.returncode != 0
    assert res.stderr.count(b"\n") == 1 and b"viewer" in res.stderr


def test_bad_input_is_one_line_error(daemon: RunningDaemon) -> None:
    res = daemon.rnx("run", "--max-cpu", "100000", "true")
    assert res.returncode != 0
    assert res.stderr.startswith(b"rnx: error: ") and res.stderr.count(b"\n") == 1
