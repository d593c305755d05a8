"""The shipped openjdk-17 runtime, end to end: `rnx runtime install openjdk-17`
from the repository, then a job compiles and runs an uploaded .java file with
the runtime's JDK, not the host's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import ROOT_NEEDED, RunningDaemon, start_daemon, wait_status
from .jobs_support import FINAL, logs, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
JAVA = """\
public class Hi {
    public static void main(String[] args) {
        String home = System.getProperty("java.home");
        System.out.println("hi " + Runtime.version().feature() + " " + home);
    }
}
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    if not list(Path("/usr/lib/jvm").glob("java-17-openjdk-*/bin/javac")):
        pytest.skip("Debian's openjdk-17-jdk-headless is not installed (scripts/deps.sh)")
    running = start_daemon(tmp_path_factory.mktemp("jdkdaemon"))
    yield running
    running.stop()


def test_install_then_compile_and_run_an_uploaded_file(daemon: RunningDaemon) -> None:
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    done = subprocess.run(
        [*cmd, "runtime", "install", "openjdk-17", "--quiet"],
        cwd=REPO, capture_output=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert b"Runtime installed: openjdk-17" in done.stdout
    upload = pb.FileUpload(path="Hi.java", content=JAVA.encode(), mode=0o644)
    script = "javac -d /tmp Hi.java && java -cp /tmp Hi && command -v java"
    job = run(daemon.jobs(), "sh", "-c", script, runtime="openjdk-17", uploads=[upload])
    status = wait_status(daemon.jobs(), job, FINAL, timeout=120)
    out = logs(daemon.jobs(), job).decode()
    assert status.status == "COMPLETED", out
    assert out == "hi 17 /opt/runtime/jdk\n/opt/runtime/jdk/bin/java\n"
