"""Facts about what a job sees, checked from inside real jobs."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from isolation_harness import ENV, Harness, sh

pytestmark = pytest.mark.privileged


async def test_ps_shows_only_the_jobs_processes(launcher: Harness) -> None:
    result = await launcher.run(["ps", "-e", "-o", "pid=,comm="])
    rows = [line.split() for line in result.stdout.splitlines()]
    # PID 1 is the init (tini, exec'd from a sealed copy named after it) and
    # the only other process is ps itself.
    assert len(rows) == 2
    assert rows[0] == ["1", "memfd:tini"]
    assert rows[1][1] == "ps"


async def test_hostname_is_the_jobs(launcher: Harness) -> None:
    spec = launcher.spec(["hostname"], hostname="my-job")
    await launcher.start(spec)
    result = await launcher.wait(spec)
    assert result.stdout.strip() == "my-job"
    files = await launcher.run(sh("cat /etc/hostname; grep -c localhost /etc/hosts"))
    assert files.stdout.split()[1] != "0"


async def test_host_files_outside_allowed_mounts_are_absent(launcher: Harness) -> None:
    secret = Path(f"/var/tmp/joblet-secret-{uuid.uuid4().hex}")
    secret.write_text("secret")
    try:
        result = await launcher.run(sh(f"cat {secret}; ls /var /opt /sys 2>&1; echo end"))
    finally:
        secret.unlink()
    assert "secret" not in result.stdout.replace(secret.name, "")
    assert result.stdout.count("No such file or directory") >= 3


async def test_allowed_mounts_are_read_only(launcher: Harness) -> None:
    result = await launcher.run(sh("touch /usr/x || echo refused; touch /x || echo refused"))
    assert result.stdout.split() == ["refused", "refused"]
    assert "Read-only file system" in result.stderr


async def test_only_fds_0_to_2_are_open(launcher: Harness) -> None:
    result = await launcher.run(["ls", "/proc/self/fd"])
    # ls itself opens the directory it lists, as fd 3.
    assert result.stdout.split() == ["0", "1", "2", "3"]


async def test_environment_is_exactly_the_given_one(launcher: Harness) -> None:
    result = await launcher.run(["env"])
    env = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert env == ENV


async def test_workspace_symlink_to_host_file_is_not_followed(launcher: Harness) -> None:
    spec = launcher.spec(sh("cat /work/link; echo rc=$?"))
    os.symlink("/etc/shadow", os.path.join(spec.workspace, "link"))
    await launcher.start(spec)
    result = await launcher.wait(spec)
    assert "rc=1" in result.stdout
    assert "root:" not in result.stdout


async def test_workspace_is_writable_and_tmp_is_private(launcher: Harness) -> None:
    spec = launcher.spec(sh("echo data > /work/out && echo t > /tmp/t && cat /tmp/t"))
    await launcher.start(spec)
    result = await launcher.wait(spec)
    assert result.exit.exit_code == 0
    assert Path(spec.workspace, "out").read_text() == "data\n"


async def test_loopback_is_up_and_alone(launcher: Harness) -> None:
    script = (
        "import socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "c = socket.create_connection(s.getsockname()); print('connected')\n"
        "print(sorted(n for _, n in socket.if_nameindex()))\n"
    )
    result = await launcher.run(["python3", "-c", script])
    assert result.stdout.split("\n")[:2] == ["connected", "['lo']"]
