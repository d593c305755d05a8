"""Exit codes, process cleanup, logs, cgroups and detachment from the client."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from isolation_harness import UNTIL_RELEASED, Harness, eventually, release, sh

from joblet.errors import IsolationError
from joblet.isolation.client import LauncherClient, ensure_launcher
from joblet.logs.format import Stream, decode_records

pytestmark = pytest.mark.privileged

PIDS_ROOT = Path("/sys/fs/cgroup/pids")


async def test_exit_codes_propagate(launcher: Harness) -> None:
    assert (await launcher.run(sh("exit 3"))).exit.exit_code == 3
    killed = await launcher.run(sh("kill -9 $$"))
    assert killed.exit.exit_code == 128 + signal.SIGKILL


async def test_exit_record_is_written(launcher: Harness) -> None:
    spec = launcher.spec(["true"])
    await launcher.start(spec)
    await launcher.wait(spec)
    record = json.loads(Path(spec.job_dir, "exit.json").read_text())
    assert record["exit_code"] == 0 and record["lost"] is False
    assert not Path(spec.job_dir, "root").exists()


async def test_output_streams_are_framed_apart(launcher: Harness) -> None:
    result = await launcher.run(sh("echo out; echo err >&2"))
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


async def test_log_size_limit_truncates(launcher: Harness) -> None:
    result = await launcher.run(sh("head -c 100000 /dev/zero"), max_log_bytes=1000)
    assert len(result.stdout) == 1000
    assert result.records[-1].stream is Stream.SYSTEM
    assert result.exit.exit_code == 0


def _host_procs_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


async def test_double_forked_background_process_dies_with_init(launcher: Harness) -> None:
    marker = f"9{uuid.uuid4().int % 10**6}.5"
    result = await launcher.run(sh(f"(setsid sleep {marker} &) ; sleep 0.1; echo started"))
    assert result.stdout == "started\n"
    assert await eventually(lambda: _host_procs_with(f"sleep\0{marker}") == [])


async def test_command_not_found_fails_the_launch(launcher: Harness) -> None:
    with pytest.raises(IsolationError, match="command not found: no-such-command"):
        await launcher.start(launcher.spec(["no-such-command"]))


async def test_signal_reaches_the_command(launcher: Harness) -> None:
    spec = launcher.spec(["sleep", "30"])
    await launcher.start(spec)
    await launcher.client.signal(spec.job_id, signal.SIGTERM)
    result = await launcher.wait(spec)
    assert result.exit.exit_code == 128 + signal.SIGTERM


async def test_a_signal_right_after_the_launch_reaches_the_command(launcher: Harness) -> None:
    """Sent before tini blocks signals or before its child has its process
    group, a signal would be dropped; the launcher holds it until then."""
    for _ in range(30):
        spec = launcher.spec(["sleep", "30"])
        await launcher.start(spec)
        assert await launcher.client.signal(spec.job_id, signal.SIGTERM)
        result = await launcher.wait(spec)
        assert result.exit.exit_code == 128 + signal.SIGTERM


async def test_a_signal_for_a_job_that_ended_is_refused(launcher: Harness) -> None:
    spec = launcher.spec(["true"])
    await launcher.start(spec)
    await launcher.wait(spec)
    with pytest.raises(IsolationError, match="no running job"):
        await launcher.client.signal(spec.job_id, signal.SIGTERM)
    with pytest.raises(IsolationError, match="signal"):
        await launcher.client.signal(spec.job_id, 12345)


async def test_job_survives_client_disconnect(launcher: Harness) -> None:
    other = await LauncherClient.connect(launcher.socket)
    spec = launcher.spec(sh(f"{UNTIL_RELEASED}; echo done"))
    pid = await other.launch(spec)
    await other.close()
    assert (await launcher.client.running())[spec.job_id] == pid
    release(spec)
    exit_file = Path(spec.job_dir, "exit.json")
    assert await eventually(exit_file.exists)
    assert json.loads(exit_file.read_text())["exit_code"] == 0
    records, _ = decode_records(Path(spec.log_path).read_bytes())
    assert records[0].data == b"done\n"


@pytest.fixture
def pids_cgroup() -> Iterator[Path]:
    if not (PIDS_ROOT / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 pids hierarchy at /sys/fs/cgroup/pids")
    group = PIDS_ROOT / f"joblet-test-{uuid.uuid4().hex[:12]}"
    group.mkdir()
    (group / "pids.max").write_text("50")
    try:
        yield group
    finally:
        for _ in range(100):
            try:
                group.rmdir()
                break
            except OSError:
                import time

                time.sleep(0.02)


async def test_job_joins_its_cgroup_and_forks_stay_bounded(
    launcher: Harness, pids_cgroup: Path
) -> None:
    bomb = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(5); os._exit(0)\n"
        "        n += 1\n"
        "    except OSError:\n"
        "        break\n"
        "print(n, flush=True)\n"
        "while not os.path.exists('/work/go'): time.sleep(0.02)  # alive until looked at\n"
    )
    spec = launcher.spec(["python3", "-c", bomb], cgroup_procs=(str(pids_cgroup / "cgroup.procs"),))
    pid = await launcher.start(spec)
    assert pid in [int(p) for p in (pids_cgroup / "cgroup.procs").read_text().split()]
    Path(spec.workspace, "go").touch()
    result = await launcher.wait(spec)
    assert 0 < int(result.stdout) < 50


async def test_restarted_launcher_reports_orphaned_job_as_lost(launcher: Harness) -> None:
    spec = launcher.spec(sh(UNTIL_RELEASED))
    pid = await launcher.start(spec)
    old = await launcher.client.ping()
    await launcher.client.close()
    os.kill(old, signal.SIGKILL)
    os.waitpid(old, 0)
    state_dir = str(launcher.base / "state")
    await ensure_launcher(launcher.socket, state_dir)
    launcher.client = await LauncherClient.connect(launcher.socket)
    assert (await launcher.client.running()) == {spec.job_id: pid}
    release(spec)
    exit_file = Path(spec.job_dir, "exit.json")
    assert await eventually(exit_file.exists)
    assert json.loads(exit_file.read_text())["lost"] is True
    assert await launcher.client.running() == {}
