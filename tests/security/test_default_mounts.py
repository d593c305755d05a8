"""Allowed mounts hold nothing private: no host keys, no home directories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb
from joblet.config.model import DEFAULT_ALLOWED_MOUNTS
from joblet.config.mounts import mount_problem
from joblet.setup.command import run_setup

PRIVATE_TOPS = ("/root", "/home", "/etc/ssl/private")


def _is_private(path: str) -> bool:
    return any(path == top or path.startswith(top + "/") or top.startswith(path.rstrip("/") + "/")
               for top in PRIVATE_TOPS)  # fmt: skip


def test_the_defaults_and_setups_file_have_no_private_path(tmp_path: Path) -> None:
    assert [m for m in DEFAULT_ALLOWED_MOUNTS if _is_private(m)] == []
    run_setup(tmp_path / "root", "127.0.0.1", 50051, [], False)
    written = yaml.safe_load((tmp_path / "root" / "config" / "joblet-config.yml").read_text())
    assert [m for m in written["filesystem"]["allowedMounts"] if _is_private(m)] == []


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/root/.pyenv", "is under /root"),
        ("/home/alice/venv", "is under /home"),
        ("/etc/ssl", "holds /etc/ssl/private"),
        ("/etc/ssl/private/../private/key.pem", "is under /etc/ssl/private"),
        ("/etc", "holds /etc/ssl/private"),
        ("/", "holds /root"),
    ],
)
def test_a_private_path_is_refused(path: str, why: str) -> None:
    problem = mount_problem(path)
    assert problem is not None and why in problem, problem


def test_public_paths_are_allowed() -> None:
    for path in ("/usr", "/etc/ssl/certs", "/etc/passwd", "/opt/python", "/homework"):
        assert mount_problem(path) is None, path


def test_a_config_mounting_root_is_refused_with_one_line(tmp_path: Path) -> None:
    run_setup(tmp_path / "root", "127.0.0.1", 50051, [], False)
    path = tmp_path / "root" / "config" / "joblet-config.yml"
    raw = yaml.safe_load(path.read_text())
    raw["filesystem"]["allowedMounts"].append("/root/.pyenv")
    path.write_text(yaml.safe_dump(raw))
    argv = [sys.executable, "-m", "joblet.daemon.main", "config", "check", str(path)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 1
    assert "filesystem.allowedMounts: /root/.pyenv is under /root" in res.stdout, res.stdout
    assert "Traceback" not in res.stdout + res.stderr


def _job_output(daemon: RunningDaemon, script: str) -> tuple[str, str]:
    stub = daemon.jobs()
    job_id = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", script])).jobUuid
    status = wait_status(stub, job_id, {"COMPLETED", "FAILED"}, timeout=60)
    out = daemon.rnx("log", "--no-follow", job_id).stdout.decode()
    return status.status, out


@pytest.mark.integration
def test_a_job_sees_ca_certificates_but_not_private_keys(daemon: RunningDaemon) -> None:
    script = (
        "ls /etc/ssl/private >/dev/null 2>&1 && echo PRIVATE-LISTED; "
        "test -e /etc/ssl/private && echo PRIVATE-EXISTS; "
        "test -e /root && echo ROOT-EXISTS; "
        "python3 -c 'import ssl; print(\"cas\", len(ssl.create_default_context().get_ca_certs()))'"
    )
    status, out = _job_output(daemon, script)
    assert status == "COMPLETED", out
    assert "PRIVATE" not in out and "ROOT-EXISTS" not in out, out
    cas = [line for line in out.splitlines() if line.startswith("cas ")]
    if Path("/etc/ssl/certs/ca-certificates.crt").exists():
        assert cas and int(cas[0].split()[1]) > 0, out
