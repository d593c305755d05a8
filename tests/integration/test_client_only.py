"""rnx and the SDK against a real daemon as a `joblet[client]` install has
them: every package the client extra does not bring is refused at import
(tests/unit/client_only.py), and any attempt from joblet's code fails the
test, even one the code would survive."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from unit import client_only

from .conftest import RunningDaemon

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

SDK_SCRIPT = """
import sys
from joblet import Client, JobletClient

with Client(config=sys.argv[1]) as client:
    job = client.run("sh", args=["-c", "cat /work/in.txt; exit 3"], uploads={"in.txt": b"sent"})
    info = job.wait(timeout=60)
    print(info.exit_code, job.output().strip())
    print(sorted(client.monitoring.status())[:1])
compat = JobletClient(config_path=sys.argv[1])
print(len(compat.jobs.list_jobs()) > 0)
"""


def client(
    daemon: RunningDaemon, tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    log = tmp_path / "blocked.log"
    done = subprocess.run(
        client_only.command(args), env=client_only.client_only_env(log),
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return done, log.read_text() if log.exists() else ""


def rnx(daemon: RunningDaemon, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cli = ["-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    done, attempts = client(daemon, tmp_path, *cli, *args)
    assert attempts == "", (args, attempts)
    return done


def test_rnx_works_with_only_the_client_packages(daemon: RunningDaemon, tmp_path: Path) -> None:
    upload = tmp_path / "data.txt"
    upload.write_text("uploaded\n")
    ran = rnx(daemon, tmp_path, "run", "-f", "--upload", str(upload), "cat", "/work/data.txt")
    assert (ran.returncode, ran.stdout) == (0, "uploaded\n"), ran.stderr
    started = rnx(daemon, tmp_path, "--json", "run", "sh", "-c", "echo out; exit 4")
    assert started.returncode == 0, started.stderr
    waited = rnx(daemon, tmp_path, "wait", json.loads(started.stdout)["id"])
    assert waited.returncode == 4, waited.stderr
    logs = rnx(daemon, tmp_path, "logs", json.loads(started.stdout)["id"])
    assert logs.stdout == "out\n", logs.stderr
    for args in (["list"], ["--json", "list"], ["version"], ["monitor", "status"],
                 ["network", "list"], ["volume", "list"], ["runtime", "list"]):  # fmt: skip
        done = rnx(daemon, tmp_path, *args)
        assert done.returncode == 0, (args, done.stderr)


def test_the_sdk_works_with_only_the_client_packages(daemon: RunningDaemon, tmp_path: Path) -> None:
    done, attempts = client(daemon, tmp_path, "-c", SDK_SCRIPT, str(daemon.rnx_config))
    assert done.returncode == 0, done.stderr
    assert attempts == ""
    lines = done.stdout.splitlines()
    assert lines[0] == "3 sent"
    assert lines[-1] == "True"
