"""The example workflows run through rnx on a real daemon: `run -f`, the
live view's lines, status, logs, list, stop, delete, validate, and the
`--requires` chain script."""

from __future__ import annotations

import os
import pty
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import RunningDaemon, wait_status
from .workflow_support import jobs_by_name, wait_job, wait_workflow

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
CREATED = re.compile(r"Workflow created with UUID: ([0-9a-f-]{36})")


def rnx(daemon: RunningDaemon, *args: str, timeout: float = 90) -> tuple[int, str, str]:
    done = daemon.rnx(*args, timeout=timeout)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def created(out: str) -> str:
    match = CREATED.search(out)
    assert match is not None, out
    return match.group(1)


@pytest.fixture
def cleanup(daemon: RunningDaemon) -> Iterator[list[str]]:
    """Workflows (by uuid) and volumes (by name) the test made, removed after it."""
    made: list[str] = []
    yield made
    stub = daemon.jobs()
    volumes = pb_grpc.VolumeServiceStub(daemon.channel())
    for item in made:
        if item.startswith("volume:"):
            volumes.RemoveVolume(pb.RemoveVolumeReq(name=item.removeprefix("volume:")))
        else:
            try:
                stub.StopWorkflow(pb.StopWorkflowRequest(workflowUuid=item))
            except grpc.RpcError as exc:  # finished already: nothing to stop
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
            wait_workflow(stub, item)
            stub.DeleteWorkflow(pb.DeleteWorkflowRequest(workflowUuid=item))


def test_chain_run_follow_status_logs_list_delete(daemon: RunningDaemon) -> None:
    code, out, err = rnx(daemon, "workflow", "run", "-f", str(EXAMPLES / "chain" / "chain.yaml"))
    assert (code, err) == (0, ""), out
    uuid = created(out)
    lines = out.splitlines()
    # Piped, the live view is one line per change, each job ending COMPLETED.
    for name in ("fetch", "build", "publish"):
        done = rf"\S+ job {name}: COMPLETED \(exit code 0\)"
        assert any(re.fullmatch(done, line) for line in lines), out
    assert lines[-1].endswith(f"workflow {uuid}: COMPLETED (3/3 jobs completed)")

    code, out, _ = rnx(daemon, "workflow", "status", uuid[:8])
    assert code == 0
    head = out.splitlines()
    assert head[:3] == [
        f"Workflow UUID: {uuid}",
        "Status: COMPLETED",
        "Progress: 3/3 jobs completed",
    ]
    assert head[4].split()[:4] == ["JOB", "UUID", "JOB", "NAME"]
    rows = [row.split() for row in head[5:8]]
    assert [r[1:4] for r in rows] == [["fetch", "COMPLETED", "0"], ["build", "COMPLETED", "0"],
                                      ["publish", "COMPLETED", "0"]]  # fmt: skip
    assert rows[1][4] == "fetch" and rows[2][4] == "build"

    code, out, _ = rnx(daemon, "workflow", "logs", uuid)
    assert (code, out) == (0, "[fetch] fetched\n[build] built\n[publish] published\n")

    assert uuid not in rnx(daemon, "workflow", "list")[1]
    code, out, _ = rnx(daemon, "workflow", "list", "--all")
    assert code == 0 and any(
        line.split()[:4] == [uuid, "chain", "COMPLETED", "3/3"] for line in out.splitlines()
    )
    code, out, _ = rnx(daemon, "workflow", "delete", uuid)
    assert code == 0 and uuid in out
    code, _, err = rnx(daemon, "workflow", "status", uuid)
    assert code == 1 and err.count("\n") == 1


def test_fan_out_fan_in_over_a_volume(daemon: RunningDaemon, cleanup: list[str]) -> None:
    path = EXAMPLES / "fan-out-fan-in" / "fan-out-fan-in.yaml"
    code, out, err = rnx(daemon, "workflow", "run", "-f", str(path))
    uuid = created(out)
    cleanup += ["volume:fan-data", uuid]
    assert (code, err) == (0, ""), out
    code, out, _ = rnx(daemon, "workflow", "logs", uuid)
    assert code == 0 and out.splitlines()[-1] == "[merge] sum=14"


def test_etl_completes_with_notify_canceled_and_secrets_masked(
    daemon: RunningDaemon, cleanup: list[str]
) -> None:
    code, out, err = rnx(daemon, "workflow", "run", "-f", str(EXAMPLES / "etl" / "etl.yaml"))
    uuid = created(out)
    cleanup += ["volume:etl-data", uuid]
    assert (code, err) == (0, ""), out
    assert re.search(
        r"job notify: CANCELED \(requires\[0\] \"NOT load=COMPLETED\" can no longer", out
    )
    code, out, _ = rnx(daemon, "workflow", "status", "--detail", uuid)
    assert code == 0 and "Status: COMPLETED" in out
    assert 'secret_environment: {DB_PASSWORD: "***"}' in out and "hunter2" not in out
    assert "Progress: 5/6 jobs completed" in out
    _, logs, _ = rnx(daemon, "workflow", "logs", uuid)
    assert logs.splitlines() == [
        "[extract] extracted 3 rows for prod",
        "[t-a] 2",
        "[t-b] 2",
        "[load] load to prod",
        "[cleanup] bye",
    ] or sorted(logs.splitlines()) == sorted(
        ["[extract] extracted 3 rows for prod", "[t-a] 2", "[t-b] 2", "[load] load to prod",
         "[cleanup] bye"]
    )  # fmt: skip


def test_a_failed_workflow_exits_1_and_json_follows(
    daemon: RunningDaemon, tmp_path: Path, cleanup: list[str]
) -> None:
    path = tmp_path / "fails.yaml"
    path.write_text("jobs:\n  bad: {command: sh, args: [-c, 'exit 3']}\n")
    code, out, _ = rnx(daemon, "workflow", "run", "-f", str(path))
    cleanup.append(created(out))
    assert code == 1 and re.search(r"job bad: FAILED \(exit code 3", out)
    code, out, _ = rnx(daemon, "--json", "workflow", "status", cleanup[-1])
    assert code == 0 and '"status": "FAILED"' in out


def test_stop_mid_run_and_watch_exits_1(
    daemon: RunningDaemon, tmp_path: Path, cleanup: list[str]
) -> None:
    path = tmp_path / "hold.yaml"
    path.write_text(
        "jobs:\n  hold: {command: sh, args: [-c, 'sleep 300']}\n"
        "  after: {command: echo, requires: [{hold: COMPLETED}]}\n"
    )
    code, out, _ = rnx(daemon, "workflow", "run", str(path))
    uuid = created(out)
    cleanup.append(uuid)
    assert code == 0 and out == f"Workflow created with UUID: {uuid}\n"
    wait_job(daemon.jobs(), uuid, "hold", {"RUNNING"})
    watch = subprocess.Popen(
        [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config),
         "workflow", "status", "--watch", uuid],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        code, out, _ = rnx(daemon, "workflow", "stop", uuid)
        assert code == 0 and "1 running job(s) stopped, 1 pending job(s) canceled" in out
        watched, _ = watch.communicate(timeout=60)
    finally:
        watch.kill()
        watch.wait()
    assert watch.returncode == 1
    assert (
        watched.decode().splitlines()[-1].endswith(f"workflow {uuid}: STOPPED (0/2 jobs completed)")
    )
    assert {j.status for j in jobs_by_name(daemon.jobs(), uuid).values()} == {"STOPPED", "CANCELED"}


def test_logs_follow_prints_jobs_as_they_start(
    daemon: RunningDaemon, tmp_path: Path, cleanup: list[str]
) -> None:
    path = tmp_path / "stream.yaml"
    path.write_text(
        "jobs:\n"
        "  one: {command: sh, args: [-c, 'echo a; sleep 0.5; echo b']}\n"
        "  two: {command: sh, args: [-c, 'printf \"x\\ny\"'], requires: [one=COMPLETED]}\n"
    )
    code, out, _ = rnx(daemon, "workflow", "run", str(path))
    uuid = created(out)
    cleanup.append(uuid)
    code, out, _ = rnx(daemon, "workflow", "logs", "-f", uuid)
    assert code == 0
    assert out == "[one] a\n[one] b\n[two] x\n[two] y\n"


def test_invalid_examples_through_rnx_create_nothing(daemon: RunningDaemon) -> None:
    before = len(
        daemon.jobs().ListWorkflows(pb.ListWorkflowsRequest(includeCompleted=True)).workflows
    )
    for path in sorted((EXAMPLES / "invalid").glob("*.yaml")):
        code, out, err = rnx(daemon, "workflow", "run", str(path))
        expected = path.with_suffix(".expected").read_text().splitlines()
        assert code == 1 and out == ""
        assert err.splitlines()[1:] == expected
    after = daemon.jobs().ListWorkflows(pb.ListWorkflowsRequest(includeCompleted=True)).workflows
    assert len(after) == before


def test_requires_chain_script(daemon: RunningDaemon) -> None:
    rnx_command = shlex.join(
        [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    )
    script = EXAMPLES / "requires-chain" / "requires-chain.sh"
    done = subprocess.run(
        ["sh", str(script), rnx_command], capture_output=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr
    ids = done.stdout.decode().split()
    assert len(ids) == 3
    stub = daemon.jobs()
    for job_id, word in zip(ids, ("first", "second", "third"), strict=True):
        final = wait_status(stub, job_id, {"COMPLETED", "FAILED", "STOPPED", "CANCELED"})
        assert final.status == "COMPLETED"
        logs = b"".join(
            c.payload for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id, noFollow=True))
        )
        assert logs == f"{word}\n".encode()
    starts = [stub.GetJobStatus(pb.GetJobStatusReq(uuid=i)) for i in ids]
    assert starts[0].endTime <= starts[1].startTime <= starts[2].startTime


def test_the_servers_problems_are_listed_one_per_line(daemon: RunningDaemon) -> None:
    """Valid here, refused there: this node has no python-3.11 runtime."""
    code, out, err = rnx(daemon, "workflow", "run", str(EXAMPLES / "etl" / "etl-python.yaml"))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "rnx: error: workflow is invalid (1 problem):",
        'line 11: jobs.extract.runtime: runtime "python-3.11" does not exist on this server',
    ]


def test_on_a_terminal_the_live_view_redraws_in_place(
    daemon: RunningDaemon, cleanup: list[str]
) -> None:
    main, side = pty.openpty()
    argv = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    path = EXAMPLES / "chain" / "chain.yaml"
    proc = subprocess.Popen([*argv, "workflow", "run", "-f", str(path)], stdout=side)
    os.close(side)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other side has closed
                break
            if not chunk:
                break
            shown += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
        os.close(main)
    text = shown.decode()
    cleanup.append(created(text))
    # Each redraw moves the cursor up over the last one and clears below it.
    assert re.search(r"\x1b\[\d+F\x1b\[J", text)
    last = text.rsplit("\x1b[J", 1)[-1].replace("\r\n", "\n")
    assert last.startswith(f"Workflow UUID: {cleanup[-1]}\nStatus: COMPLETED\n")
    assert "Progress: 3/3 jobs completed" in last
