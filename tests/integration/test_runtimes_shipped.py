"""The shipped runtimes, end to end through a real daemon: `rnx runtime
install python-3.11` from the repository (wheels fetched by rnx), then numpy
in a job comes from /opt/runtime at the pinned version, not Debian's;
openjdk-17 compiles and runs an uploaded .java file."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, RunningDaemon, start_daemon, wait_status
from .jobs_support import FINAL, logs, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtimes" / "python-3.11"
INSTALL_BUDGET_S = 90.0


def pinned_numpy() -> str:
    match = re.search(r"^numpy==(\S+)", (RUNTIME / "requirements.txt").read_text(), re.M)
    assert match is not None
    return match.group(1)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    if not RUNTIME.is_dir() or importlib.util.find_spec("joblet.cli.runtime_prepare") is None:
        pytest.skip("the shipped runtimes or rnx's wheel preparation are missing")
    running = start_daemon(tmp_path_factory.mktemp("pydaemon"))
    yield running
    running.stop()


@pytest.mark.timeout(400)
def rnx_install(daemon: RunningDaemon, name: str) -> float:
    """`rnx runtime install NAME` from the repository; the seconds it took."""
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    started = time.monotonic()
    done = subprocess.run(
        [*cmd, "runtime", "install", name, "--quiet"],
        cwd=REPO, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert f"Runtime installed: {name}".encode() in done.stdout
    return time.monotonic() - started


def test_install_then_numpy_from_the_runtime(daemon: RunningDaemon) -> None:
    if not Path("/usr/bin/python3.11").exists():
        pytest.skip("Debian's python3.11 is not installed (scripts/deps.sh)")
    took = rnx_install(daemon, "python-3.11")
    assert took < INSTALL_BUDGET_S, f"installing took {took:.0f}s"
    code = "import numpy; print(numpy.__version__, numpy.__file__)"
    job = run(daemon.jobs(), "python3", "-c", code, runtime="python-3.11")
    assert wait_status(daemon.jobs(), job, FINAL, timeout=60).status == "COMPLETED"
    version, path = logs(daemon.jobs(), job).decode().split()
    assert version == pinned_numpy()
    assert path.startswith("/opt/runtime/venv/")
    write = run(daemon.jobs(), "touch", "/opt/runtime/x", runtime="python-3.11")
    assert wait_status(daemon.jobs(), write, FINAL, timeout=60).status == "FAILED"
    test = pb_grpc.RuntimeServiceStub(daemon.channel()).TestRuntime(
        pb.RuntimeTestReq(runtime="python-3.11"), timeout=120
    )
    assert test.success, test.output + test.error
    assert pinned_numpy() in test.output


HELLO = b"""public class Hello {
    public static void main(String[] args) {
        System.out.println("hello from java " + System.getProperty("java.home"));
    }
}
"""


@pytest.mark.timeout(400)
def test_openjdk_compiles_and_runs_an_uploaded_file(daemon: RunningDaemon) -> None:
    if not Path("/usr/lib/jvm/java-17-openjdk-amd64").exists() and not list(
        Path("/usr/lib/jvm").glob("java-17-openjdk-*")
    ):
        pytest.skip("Debian's openjdk-17-jdk-headless is not installed (scripts/deps.sh)")
    rnx_install(daemon, "openjdk-17")
    upload = pb.FileUpload(path="Hello.java", content=HELLO, mode=0o644)
    job = run(
        daemon.jobs(), "sh", "-c", "javac Hello.java && java Hello",
        runtime="openjdk-17", uploads=[upload],
    )  # fmt: skip
    status = wait_status(daemon.jobs(), job, FINAL, timeout=120)
    output = logs(daemon.jobs(), job)
    assert status.status == "COMPLETED", output
    assert output == b"hello from java /opt/runtime/jdk\n"


def test_the_python_etl_workflow_runs_on_the_runtime(daemon: RunningDaemon) -> None:
    """examples/workflows/etl/etl-python.yaml, whose extract job names the
    runtime installed above (a workflow validates runtimes against the node's)."""
    if not Path("/usr/bin/python3.11").exists():
        pytest.skip("Debian's python3.11 is not installed (scripts/deps.sh)")
    stub = pb_grpc.RuntimeServiceStub(daemon.channel())
    if not stub.GetRuntimeInfo(pb.RuntimeInfoReq(runtime="python-3.11")).found:
        rnx_install(daemon, "python-3.11")
    example = REPO / "examples" / "workflows" / "etl" / "etl-python.yaml"
    done = daemon.rnx("workflow", "run", "-f", str(example), timeout=180)
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    match = re.search(r"Workflow created with UUID: (\S+)", out)
    assert match is not None, out
    jobs = daemon.jobs().GetWorkflowJobs(pb.GetWorkflowJobsRequest(workflowUuid=match.group(1)))
    extract = next(job for job in jobs.jobs if job.jobName == "extract")
    status = daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=extract.jobUuid))
    assert status.runtime == "python-3.11" and status.status == "COMPLETED"
    assert logs(daemon.jobs(), extract.jobUuid) == b"extracted 3 rows for prod\n"
