"""rnx driven through `main(argv)` against an in-process JobService."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from conftest import FakeJob, FakeJobService, Rnx, insecure_channel, write_config

from joblet.api import joblet_pb2 as pb
from joblet.cli.main import main


def _field(out: str, label: str) -> str:
    values = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(f"{label}: ")]
    assert len(values) == 1, out
    return values[0]


def _run(rnx: Rnx, *argv: str) -> str:
    code, out, err = rnx("run", *argv)
    assert (code, err) == (0, "")
    return _field(out, "ID")


def test_run_prints_id_and_status_and_sends_every_flag(rnx: Rnx, tmp_path: Path) -> None:
    upload = tmp_path / "data.txt"
    upload.write_text("x")
    code, out, err = rnx(
        "job",
        "run",
        "--name",
        "n1",
        "--max-cpu",
        "50",
        "--max-memory",
        "64",
        "--max-iobps",
        "1000",
        "--cpu-cores",
        "0-1",
        "-e",
        "A=1",
        "--env",
        "B=2=3",
        "-s",
        "TOKEN=hush",
        "--workdir",
        "/work/sub",
        "--upload",
        str(upload),
        "--volume",
        "v1",
        "--volume",
        "v2",
        "--network",
        "net",
        "--runtime",
        "py",
        "--gpu",
        "1",
        "--gpu-memory",
        "512",
        "python3",
        "-c",
        "print(1)",
        "--name",
        "x",
    )
    assert (code, err) == (0, "")
    job_id = _field(out, "ID")
    assert _field(out, "Status") == "RUNNING"
    (request,) = rnx.service.requests
    assert request.command == "python3"
    assert list(request.args) == ["-c", "print(1)", "--name", "x"]
    assert (request.name, request.maxCpu, request.maxMemory, request.maxIobps) == (
        "n1",
        50,
        64,
        1000,
    )
    assert request.cpuCores == "0-1" and request.workDir == "/work/sub"
    assert dict(request.environment) == {"A": "1", "B": "2=3"}
    assert dict(request.secret_environment) == {"TOKEN": "hush"}
    assert list(request.volumes) == ["v1", "v2"]
    assert (request.network, request.runtime, request.gpu_count, request.gpu_memory_mb) == (
        "net",
        "py",
        1,
        512,
    )
    assert [(u.path, u.content, u.isDirectory) for u in request.uploads] == [
        ("data.txt", b"x", False)
    ]
    assert job_id in rnx.service.jobs


def test_follow_streams_output_only_and_exits_zero(rnx: Rnx) -> None:
    code, out, err = rnx("run", "-f", "echo", "hello", "world")
    assert code == 0
    assert out == "hello world\n"  # the job's output and nothing else on stdout
    assert "ID: " in err and "Status: RUNNING" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(("exit", "3"), 3), (("killed",), 137), (("exit", "0"), 0), (("lagging",), 4)],
)
def test_follow_exits_with_the_jobs_exit_code(
    rnx: Rnx, argv: tuple[str, ...], expected: int
) -> None:
    code, _, _ = rnx("run", "--follow", *argv)
    assert code == expected


def test_scheduled_job_can_be_canceled(rnx: Rnx) -> None:
    _, out, _ = rnx("run", "--schedule", "1h", "sleep", "9")
    job_id = _field(out, "ID")
    assert _field(out, "Status") == "SCHEDULED"
    assert rnx("job", "cancel", job_id)[:2] == (0, f"Job ID: {job_id}\nStatus: CANCELED\n")


def test_status_of_finished_job(rnx: Rnx) -> None:
    job_id = _run(rnx, "-s", "PASSWORD=secret", "-e", "MODE=fast", "exit", "2")
    code, out, err = rnx("status", job_id[:8])
    assert (code, err) == (0, "")
    assert _field(out, "Job ID") == job_id
    assert _field(out, "Status") == "FAILED"
    assert _field(out, "Exit Code") == "2"
    assert _field(out, "Duration") == "2s"  # the start is whole seconds: no fraction shown
    assert "  PASSWORD=***" in out and "secret" not in out
    assert "  MODE=fast" in out


def test_status_of_running_job_has_no_exit_code(rnx: Rnx) -> None:
    job_id = _run(rnx, "sleep", "100")
    code, out, _ = rnx("job", "status", job_id)
    assert code == 0 and _field(out, "Status") == "RUNNING"
    assert "Exit Code" not in out
    rnx.service.jobs[job_id].ended.set()


def test_list_shows_a_table(rnx: Rnx) -> None:
    first = _run(rnx, "--name", "one", "echo", "a")
    second = _run(rnx, "exit", "1")
    code, out, err = rnx("list")
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "STARTED", "DURATION", "COMMAND"]
    assert rows[0].startswith(first[:8] + " ") and "one" in rows[0] and rows[0].endswith("echo a")
    assert rows[1].startswith(second[:8] + " ") and "FAILED" in rows[1]
    assert rnx("ps", "-q")[1].split() == [first, second]
    assert header.index("STATUS") == rows[0].index("COMPLETED")  # aligned


def test_log_prints_raw_bytes_and_nothing_else(
    service: tuple[FakeJobService, int], tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    fake, port = service
    job = FakeJob(pb.RunJobRequest(command="x"), "0f0e", status="COMPLETED")
    job.output = [b"a\n", b"\xff\xfe", b"b"]
    job.ended.set()
    fake.jobs[job.uuid] = job
    config = write_config(tmp_path / "c.yml", f"127.0.0.1:{port}")
    code = main(["--config", str(config), "job", "log", "0f"], channel_factory=insecure_channel)
    out, err = capsysbinary.readouterr()
    assert (code, out, err) == (0, b"a\n\xff\xfeb", b"")


def test_stop_delete_and_delete_all(rnx: Rnx) -> None:
    job_id = _run(rnx, "sleep", "100")
    code, out, _ = rnx("stop", job_id)
    assert code == 0 and _field(out, "Status") == "STOPPED" and _field(out, "Exit Code") == "143"
    assert rnx("job", "delete", job_id)[:2] == (0, f"job {job_id} deleted\n")
    _run(rnx, "echo", "x")
    code, out, _ = rnx("job", "delete-all")
    assert code == 0 and "Deleted: 1" in out


def test_json_output_spells_each_field_one_way(rnx: Rnx) -> None:
    code, out, _ = rnx("--json", "run", "-s", "K=v", "exit", "0")
    assert code == 0
    run = json.loads(out)
    assert run["status"] == "RUNNING" and "id" in run and run["exit_code"] == 0
    _, out, _ = rnx("--json", "status", run["id"])
    status = json.loads(out)
    assert status["secret_environment"] == {"K": "***"}
    assert {"max_cpu", "max_iobps", "exit_code", "gpu_count", "end_reason"} <= status.keys()
    _, out, _ = rnx("job", "list", "--json")  # global option after the command
    (listed,) = json.loads(out)["jobs"]
    assert listed["id"] == run["id"] and "max_cpu" in listed
    assert set(run) & set(listed) <= set(status)  # the same names everywhere


def test_json_log_is_one_document_per_chunk(rnx: Rnx) -> None:
    job_id = _run(rnx, "chunks", "one", "two")
    code, out, _ = rnx("--json", "log", job_id)
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"data": "one"},
        {"data": "two"},
    ]


def test_not_found_is_one_line(rnx: Rnx) -> None:
    code, out, err = rnx("status", "nope")
    assert (code, out, err) == (1, "", "rnx: error: job nope not found\n")


def test_failed_precondition_is_the_servers_message(rnx: Rnx) -> None:
    job_id = _run(rnx, "echo", "done")
    code, _, err = rnx("stop", job_id)
    assert (code, err) == (1, f"rnx: error: job {job_id} is not running\n")


def test_permission_denied(rnx: Rnx) -> None:
    rnx.service.deny_delete_all = True
    code, _, err = rnx("job", "delete-all")
    assert (code, err) == (1, "rnx: error: permission denied: role viewer may not DeleteAllJobs\n")


def test_unavailable_when_nothing_listens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], service: tuple[FakeJobService, int]
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rnx = Rnx(write_config(tmp_path / "c.yml", f"127.0.0.1:{port}"), service[0], capsys)
    code, out, err = rnx("list")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        f"rnx: error: cannot reach joblet at 127.0.0.1:{port}: connection refused"
    )


def test_usage_errors_are_one_line_with_exit_code_2(rnx: Rnx) -> None:
    code, out, err = rnx("run", "-e", "1X=2", "ls")
    assert code == 2 and out == ""
    assert err.startswith("rnx: error: argument -e/--env: invalid variable name '1X'")
    assert err.endswith(" (see 'rnx run --help')\n") and err.count("\n") == 1
    code, out, err = rnx("run", "-e", "RNX_SURELY_UNSET_VAR", "ls")
    assert code == 2 and "RNX_SURELY_UNSET_VAR is not set" in err
    assert rnx("run")[0] == 2
    assert rnx("run", "--max-cpu", "-5", "ls")[0] == 2


def test_unknown_node_lists_available_nodes(rnx: Rnx) -> None:
    code, _, err = rnx("--node", "prod", "list")
    assert code == 2
    assert err == f"rnx: error: node 'prod' is not in {rnx.config} (available nodes: default)\n"


def test_interrupt_and_unexpected_errors_are_quiet(rnx: Rnx) -> None:
    def interrupted(_: object) -> object:
        raise KeyboardInterrupt

    def broken(_: object) -> object:
        raise RuntimeError("boom")

    rnx.factory = interrupted  # type: ignore[assignment]
    assert rnx("list") == (130, "", "")
    rnx.factory = broken  # type: ignore[assignment]
    assert rnx("list") == (1, "", "rnx: error: unexpected RuntimeError: boom\n")


def test_broken_pipe_exits_quietly(rnx: Rnx, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = _run(rnx, "echo", "hi")

    class ClosedPipe:
        def write(self, _: str) -> int:
            raise BrokenPipeError

        def flush(self) -> None:
            raise BrokenPipeError

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["--config", str(rnx.config), "status", job_id], channel_factory=rnx.factory) == 141
    monkeypatch.undo()
    assert rnx.capsys.readouterr().err == ""


def test_nodes_marks_the_selected_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.yml", "10.0.0.1:50051", serverName="joblet.lan")
    assert main(["--config", str(config), "nodes", "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].split() == ["*", "default", "10.0.0.1:50051", "joblet.lan"]
    assert main(["--config", str(config), "--json", "nodes", "--no-probe"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["nodes"] == [
        {
            "name": "default",
            "address": "10.0.0.1:50051",
            "server_name": "joblet.lan",
            "selected": True,
        }
    ]
