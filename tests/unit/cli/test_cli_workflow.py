"""rnx workflow without a server: validation, the views, the upload files,
and `--requires` for `rnx job run`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Rnx

from joblet.api import joblet_pb2 as pb
from joblet.cli.job_args import requirement
from joblet.cli.main import main
from joblet.cli.workflow_view import changes, render_list, render_status
from joblet.client.errors import CliError
from joblet.client.workflow_files import workflow_files

UUID = "0b6f1c1e-4a57-4d3e-9a1e-1d2b3c4d5e6f"


def status_response() -> pb.GetWorkflowStatusResponse:
    return pb.GetWorkflowStatusResponse(
        workflow=pb.WorkflowInfo(
            uuid=UUID,
            name="etl",
            status="RUNNING",
            totalJobs=3,
            completedJobs=1,
            yamlContent='secret_environment: {P: "***"}\n',
        ),
        jobs=[
            pb.WorkflowJob(
                jobUuid="1" * 8,
                jobName="extract",
                status="COMPLETED",
                startTime=pb.Timestamp(seconds=100),
                endTime=pb.Timestamp(seconds=102, nanos=500_000_000),
            ),
            pb.WorkflowJob(
                jobUuid="2" * 8,
                jobName="load\x1b]0;owned\x07",
                status="RUNNING",
                dependencies=["extract"],
                startTime=pb.Timestamp(seconds=103),
            ),
            pb.WorkflowJob(
                jobUuid="3" * 8,
                jobName="notify",
                status="PENDING",
                dependencies=["extract", "load"],
            ),
        ],
    )


def test_status_has_the_three_lines_then_the_job_table() -> None:
    text = render_status(status_response(), now=110.0)
    lines = text.splitlines()
    assert lines[:3] == [
        f"Workflow UUID: {UUID}",
        "Status: RUNNING",
        "Progress: 1/3 jobs completed",
    ]
    assert lines[4].split() == [
        "JOB",
        "UUID",
        "JOB",
        "NAME",
        "STATUS",
        "EXIT",
        "CODE",
        "DEPENDENCIES",
        "DURATION",
    ]
    assert lines[5].split() == ["11111111", "extract", "COMPLETED", "0", "-", "2.50s"]
    # A running job: no exit code yet, duration so far; the name's escape
    # sequence is shown, not sent to the terminal.
    assert "\x1b" not in text and "load\\x1b]0;owned\\x07" in lines[6]
    assert lines[6].split()[2:] == ["RUNNING", "-", "extract", "7s"]
    assert lines[7].split() == ["33333333", "notify", "PENDING", "-", "extract,", "load", "-"]
    assert "secret_environment" not in text


def test_detail_adds_the_masked_yaml() -> None:
    text = render_status(status_response(), now=110.0, detail=True)
    assert text.endswith('secret_environment: {P: "***"}')


def test_piped_live_view_prints_one_line_per_change() -> None:
    seen: dict[str, str] = {}
    first = changes(seen, status_response(), "10:00:00")
    assert first == [
        "10:00:00 job extract: COMPLETED (exit code 0)",
        "10:00:00 job load\\x1b]0;owned\\x07: RUNNING",
        "10:00:00 job notify: PENDING",
        f"10:00:00 workflow {UUID}: RUNNING (1/3 jobs completed)",
    ]
    res = status_response()
    assert changes(seen, res, "10:00:01") == []
    res.jobs[2].status = "CANCELED"
    res.jobs[2].endReason = 'requires[0] "NOT load=COMPLETED" can no longer hold: load is COMPLETED'
    assert changes(seen, res, "10:00:02") == [
        '10:00:02 job notify: CANCELED (requires[0] "NOT load=COMPLETED" can no longer hold:'
        " load is COMPLETED)"
    ]


def test_list() -> None:
    assert render_list([]) == "No workflows."
    text = render_list([status_response().workflow])
    assert text.splitlines()[1].split()[:4] == [UUID, "etl", "RUNNING", "1/3"]


@pytest.mark.parametrize(
    ("flag", "fields"),
    [
        (UUID, (UUID, "", "")),
        (f"{UUID}=failed", (UUID, "FAILED", "")),
        ("0b6f1c1e", ("", "", "0b6f1c1e=COMPLETED")),
        ("0b6f=FINISHED", ("", "", "0b6f=FINISHED")),
        (f"{UUID}=COMPLETED OR abc=FAILED", ("", "", f"{UUID}=COMPLETED OR abc=FAILED")),
    ],
)
def test_requires_flag(flag: str, fields: tuple[str, str, str]) -> None:
    got = requirement(flag)
    assert (got.jobUuid, got.status, got.expression) == fields


def test_validate_prints_one_line_for_a_valid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("jobs:\n  a: {command: echo, uploads: {files: [in.txt]}}\n")
    assert main(["workflow", "validate", str(path)]) == 1
    assert "jobs.a.uploads: 'in.txt' not found" in capsys.readouterr().err
    (tmp_path / "in.txt").write_text("x")
    assert main(["workflow", "validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid, 1 job\n"


def test_validate_refuses_unreadable_files_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["workflow", "validate", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"jobs: \xff\n")
    assert main(["workflow", "validate", str(binary)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_workflow_files_are_read_relative_to_the_yaml(tmp_path: Path) -> None:
    (tmp_path / "scripts" / "lib").mkdir(parents=True)
    (tmp_path / "scripts" / "lib" / "a.sh").write_text("echo a")
    (tmp_path / "run.sh").write_text("echo run")
    os.chmod(tmp_path / "run.sh", 0o750)
    entries = {e.path: e for e in workflow_files(tmp_path, ["run.sh", "scripts", "run.sh"])}
    assert sorted(entries) == ["run.sh", "scripts", "scripts/lib", "scripts/lib/a.sh"]
    assert entries["run.sh"].mode == 0o750 and entries["run.sh"].content == b"echo run"
    assert entries["scripts/lib"].is_directory


def test_workflow_files_never_leave_the_yaml_directory(tmp_path: Path) -> None:
    outside = tmp_path / "private"
    outside.write_text("secret")
    flow = tmp_path / "flow"
    flow.mkdir()
    (flow / "data").symlink_to(outside)
    with pytest.raises(CliError, match="outside the workflow's directory"):
        workflow_files(flow, ["data"])


def test_job_run_sends_requirements(rnx: Rnx) -> None:
    code, _, err = rnx(
        "run", "--requires", f"{UUID}=failed", "--requires", "abc=COMPLETED OR def=FAILED",
        "echo", "x",
    )  # fmt: skip
    assert (code, err) == (0, "")
    sent = rnx.service.requests[-1].requirements
    assert [(r.jobUuid, r.status, r.expression) for r in sent] == [
        (UUID, "FAILED", ""),
        ("", "", "abc=COMPLETED OR def=FAILED"),
    ]
