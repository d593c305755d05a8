"""Scripts written to the reference SDK's documented 1.x API
(`joblet-sdk-python`), run unchanged in a fresh interpreter against a real daemon."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from .conftest import RunningDaemon

# As the reference's README and examples write it: config discovery, dict
# results, its exception names.
DISCOVERY_SCRIPT = """
import time
from joblet import JobletClient, JobNotFoundError, JobletException

with JobletClient() as client:
    assert client.health_check()
    job = client.jobs.run_job(
        command="sh", args=["-c", "echo compat; exit 2"], name="compat-job",
        max_memory=64, environment={"GREETING": "hi"},
    )
    uuid = job["job_uuid"]
    while client.jobs.get_job_status(uuid)["status"] in ("INITIALIZING", "RUNNING"):
        time.sleep(0.1)
    status = client.jobs.get_job_status(uuid)
    print("status", status["status"], status["exit_code"], status["name"], status["max_memory"])
    print("logs", b"".join(client.jobs.get_job_logs(uuid)).decode().strip())
    listed = [j for j in client.jobs.list_jobs() if j["uuid"] == uuid]
    reference_keys = {"uuid", "name", "command", "args", "max_cpu", "cpu_cores", "max_memory",
                      "max_iobps", "status", "start_time", "end_time", "exit_code",
                      "scheduled_time", "runtime", "environment", "secret_environment"}
    print("listed", len(listed), reference_keys <= set(listed[0]))
    try:
        client.jobs.get_job_status("0000dead")
    except JobNotFoundError as exc:
        print("not found", isinstance(exc, JobletException))
    sleeper = client.jobs.run_job(command="sleep", args=["30"])
    print("stopped", client.jobs.stop_job(sleeper["job_uuid"])["uuid"] == sleeper["job_uuid"])
    print("deleted", client.jobs.delete_job(uuid)["success"])
    vol = client.volumes.create_volume(name="compat-vol", size="8MB", volume_type="memory")
    print("volume", vol["name"], [v["name"] for v in client.volumes.list_volumes()])
    print("removed", client.volumes.remove_volume("compat-vol")["success"])
    print("networks", sorted(n["name"] for n in client.networks.list_networks())[:1])
    system = client.monitoring.get_system_status()
    print("cpu", system["cpu"]["usage_percent"] >= 0, system["memory"]["total_bytes"] > 0)
"""

EXPLICIT_SCRIPT = """
import sys
from joblet import JobletClient

client = JobletClient(
    host="127.0.0.1", port=int(sys.argv[1]), ca_cert_path=sys.argv[2],
    client_cert_path=sys.argv[3], client_key_path=sys.argv[4],
)
try:
    job = client.jobs.run_job(command="echo", args=["explicit"])
    print("ran", job["status"] in ("RUNNING", "COMPLETED"), job["command"])
finally:
    client.close()
"""


def _run(script: str, env: dict[str, str], *argv: str) -> str:
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *argv],
        capture_output=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RNX_CONFIG", "RNX_CONFIG_PATH")}
    env["HOME"] = "/nonexistent"  # no ~/.rnx of the host's
    return {**env, **extra}


def test_a_reference_script_runs_unchanged(daemon: RunningDaemon) -> None:
    out = _run(DISCOVERY_SCRIPT, _env(RNX_CONFIG_PATH=str(daemon.rnx_config)))
    assert "status FAILED 2 compat-job 64" in out
    assert "logs compat" in out
    assert "listed 1 True" in out
    assert "not found True" in out
    assert "stopped True" in out and "deleted True" in out
    assert "volume compat-vol ['compat-vol']" in out and "removed True" in out
    assert "cpu True True" in out


def test_explicit_certificate_paths(daemon: RunningDaemon, tmp_path: Path) -> None:
    node = yaml.safe_load(daemon.rnx_config.read_text())["nodes"]["default"]
    paths = []
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_text(node[name])
        paths.append(str(tmp_path / f"{name}.pem"))
    out = _run(EXPLICIT_SCRIPT, _env(), str(daemon.port), *paths)
    assert out.strip() == "ran True echo"
