"""What a daemon leaves in the kernel: nothing after a clean stop with no job;
the launcher and what its jobs use after a kill -9 while jobs run, until the
last one ends; nothing of its root after `joblet teardown`, which never
touches a second daemon's objects. Each daemon runs in a network namespace of
its own (or shares one where the test says so)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.network.addressing import daemon_prefix
from joblet.network.firewall import table_name
from joblet.resources.detect import create_cgroup_manager
from joblet.resources.interface import Limits
from joblet.volumes import loop

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, wait_status
from .netns import Netns
from .test_volumes_service import unmount_volumes

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
CGROUP_ROOT = Path("/sys/fs/cgroup")


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., RunningDaemon]]:
    """Daemons with config sections of the test's own; stopped, their volumes
    unmounted, at the end."""
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    started: list[RunningDaemon] = []

    def make(
        sections: Mapping[str, Mapping[str, Any]] | None = None, world: Netns | None = None
    ) -> RunningDaemon:
        running = launch_daemon(tmp_path / f"d{len(started)}", sections, world=world)
        started.append(running)
        return running

    yield make
    for running in reversed(started):  # a shared namespace goes with the first
        running.stop()
        unmount_volumes(running.root)


def needs_volumes() -> None:
    if shutil.which("mkfs.ext4") is None or not os.path.exists("/dev/loop-control"):
        pytest.skip("filesystem volumes need mkfs.ext4 (e2fsprogs) and /dev/loop-control")


# ---- what a daemon has in the kernel ------------------------------------------


def cgroup_groups(daemon: RunningDaemon) -> list[Path]:
    """The daemon's parent group in every hierarchy (v1 or v2) that has it."""
    parent = daemon.cgroup_parent()
    return [p for p in [CGROUP_ROOT / parent, *CGROUP_ROOT.glob(f"*/{parent}")] if p.is_dir()]


def node_id(daemon: RunningDaemon) -> str:
    """The daemon's configured node id, else the one it generated."""
    configured = yaml.safe_load(daemon.config_path.read_text()).get("server", {}).get("nodeId")
    return str(configured or (daemon.root / "state" / "node-id").read_text().strip())


def prefix(daemon: RunningDaemon) -> str:
    """The start of the daemon's interface names."""
    return daemon_prefix(node_id(daemon))


def links(daemon: RunningDaemon) -> list[str]:
    return [name for name in daemon.world.links() if name.startswith(prefix(daemon))]


def has_table(daemon: RunningDaemon) -> bool:
    table = table_name(node_id(daemon), prefix(daemon))
    return any(line.split()[-1:] == [table] for line in daemon.world.nft_tables())


def loop_devices(daemon: RunningDaemon) -> list[str]:
    return loop.leftovers(loop.read_bindings(), os.path.realpath(daemon.root / "volumes"), set())


def launcher_processes(daemon: RunningDaemon) -> list[int]:
    """The launcher of this root and its children (spares are forks of it)."""
    socket = os.fsencode(daemon.root / "run" / "launcher.sock")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if socket in argv and not zombie:
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# ---- talking to it ----------------------------------------------------------------


def run(daemon: RunningDaemon, command: str, *args: str, **fields: object) -> str:
    request = pb.RunJobRequest(command=command, args=list(args), **fields)  # type: ignore[arg-type]
    return str(daemon.jobs().RunJob(request).jobUuid)


def run_to_end(daemon: RunningDaemon, script: str, **fields: object) -> pb.GetJobStatusRes:
    job_id = run(daemon, "sh", "-c", script, **fields)
    return wait_status(daemon.jobs(), job_id, FINAL, timeout=30)


def logs(daemon: RunningDaemon, job_id: str) -> bytes:
    chunks = daemon.jobs().GetJobLogs(pb.GetJobLogsReq(uuid=job_id))
    return b"".join(c.payload for c in chunks)


def teardown(daemon: RunningDaemon, *flags: str) -> subprocess.CompletedProcess[str]:
    """`joblet teardown` for the daemon's root, in its network namespace."""
    argv = [sys.executable, "-m", "joblet.daemon.main", "teardown"]
    return subprocess.run(
        ["nsenter", f"--net={daemon.world.netns}", *argv, "--config", str(daemon.config_path),
         *flags],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def assert_nothing_left(daemon: RunningDaemon) -> None:
    assert launcher_processes(daemon) == []
    assert cgroup_groups(daemon) == []
    assert links(daemon) == []
    assert not has_table(daemon)
    assert loop_devices(daemon) == []


# ---- a clean stop ----------------------------------------------------------------


def test_clean_stop_with_no_job_leaves_nothing_and_the_next_start_makes_it_again(
    daemons: Callable[..., RunningDaemon],
) -> None:
    needs_volumes()
    daemon = daemons()
    pb_grpc.NetworkServiceStub(daemon.channel()).CreateNetwork(
        pb.CreateNetworkReq(name="lab", cidr="10.205.0.0/24")
    )
    pb_grpc.VolumeServiceStub(daemon.channel()).CreateVolume(
        pb.CreateVolumeReq(name="data", size="16MiB")
    )
    done = run_to_end(daemon, "echo kept > /volumes/data/f; sync", volumes=["data"], network="lab")
    assert done.exitCode == 0
    assert run_to_end(daemon, "exit 0").status == "COMPLETED"  # leaves a spare init too
    launcher = daemon.launcher_pid()
    assert launcher_processes(daemon) and cgroup_groups(daemon) and has_table(daemon)
    assert len(links(daemon)) == 2  # the default bridge and lab's
    assert len(loop_devices(daemon)) == 1

    daemon.stop_daemon_only()

    assert not alive(launcher)
    assert_nothing_left(daemon)
    assert not (daemon.root / "run" / "launcher" / "launcher.pid").exists()

    daemon.restart()
    networks = pb_grpc.NetworkServiceStub(daemon.channel()).ListNetworks(pb.EmptyRequest())
    assert "lab" in [n.name for n in networks.networks]
    assert len(links(daemon)) == 2 and has_table(daemon)
    again = run(daemon, "cat", "/volumes/data/f", volumes=["data"], network="lab")
    assert wait_status(daemon.jobs(), again, FINAL, timeout=30).exitCode == 0
    assert logs(daemon, again) == b"kept\n"


def test_clean_stop_that_stops_jobs_stops_a_running_one_then_leaves_nothing(
    daemons: Callable[..., RunningDaemon],
) -> None:
    daemon = daemons({"joblet": {"stopGracePeriod": "1s", "stopJobsOnShutdown": True}})
    job_id = run(daemon, "sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.1; done")
    wait_status(daemon.jobs(), job_id, {"RUNNING"})
    daemon.stop_daemon_only()
    assert_nothing_left(daemon)
    daemon.restart()
    status = daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
    assert status.status == "STOPPED", status


# ---- kill -9 while a job runs ---------------------------------------------------


def test_after_kill9_the_launcher_keeps_the_job_then_exits_and_its_exit_code_is_kept(
    daemons: Callable[..., RunningDaemon],
) -> None:
    daemon = daemons({"joblet": {"launcherIdleExit": "1s"}})
    job_id = run(
        daemon, "sh", "-c", "echo started; while ! [ -e /work/go ]; do sleep 0.1; done; exit 7"
    )
    wait_status(daemon.jobs(), job_id, {"RUNNING"})
    launcher = daemon.launcher_pid()
    daemon.kill9()

    time.sleep(3)  # three times the idle exit: the job keeps it
    assert alive(launcher)
    assert cgroup_groups(daemon) and links(daemon) and has_table(daemon)
    assert any(d.name == f"job-{job_id}" for g in cgroup_groups(daemon) for d in g.iterdir())

    (daemon.workspace(job_id) / "go").touch()  # the job ends, no daemon
    wait_until(lambda: not alive(launcher), 30, "the launcher to exit after the last job")
    assert launcher_processes(daemon) == []
    assert not (daemon.root / "run" / "launcher" / "launcher.pid").exists()

    daemon.restart()
    status = wait_status(daemon.jobs(), job_id, FINAL, timeout=30)
    assert (status.status, status.exitCode) == ("FAILED", 7)
    assert logs(daemon, job_id) == b"started\n"


# ---- joblet teardown --------------------------------------------------------------


def test_teardown_refuses_while_the_daemon_serves_or_a_job_runs_and_force_kills(
    daemons: Callable[..., RunningDaemon],
) -> None:
    daemon = daemons()
    job_id = run(daemon, "sleep", "600")
    wait_status(daemon.jobs(), job_id, {"RUNNING"})

    serving = teardown(daemon)
    assert serving.returncode == 1
    assert serving.stderr.startswith("joblet: error: a joblet daemon (pid ")
    assert len(serving.stderr.splitlines()) == 1

    daemon.kill9()
    launcher = daemon.launcher_pid()
    refused = teardown(daemon)
    assert refused.returncode == 1, refused.stdout
    assert refused.stderr.splitlines() == [
        f"joblet: error: 1 job(s) still run under {daemon.root} ({job_id}):"
        " stop them, or pass --force to kill them"
    ]
    assert alive(launcher) and cgroup_groups(daemon) and links(daemon) and has_table(daemon)

    forced = teardown(daemon, "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"killed 1 job(s); launcher (pid {launcher})" in forced.stdout
    assert not alive(launcher)
    assert_nothing_left(daemon)

    daemon.restart()  # the launcher recorded the kill: not "lost"
    status = wait_status(daemon.jobs(), job_id, FINAL, timeout=30)
    assert status.exitCode == 137 and not status.endReason.startswith("lost"), status


def test_teardown_finds_jobs_by_their_cgroups_when_the_launcher_is_gone_too(
    daemons: Callable[..., RunningDaemon],
) -> None:
    daemon = daemons()
    job_id = run(daemon, "sleep", "600")
    wait_status(daemon.jobs(), job_id, {"RUNNING"})
    launcher = daemon.launcher_pid()
    daemon.kill9()
    os.kill(launcher, signal.SIGKILL)
    wait_until(lambda: not alive(launcher), 10, "the launcher to die")

    refused = teardown(daemon)
    assert refused.returncode == 1
    assert f"1 job(s) still run under {daemon.root} ({job_id})" in refused.stderr
    forced = teardown(daemon, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "killed 1 job(s)" in forced.stdout and "launcher" not in forced.stdout
    assert_nothing_left(daemon)


def test_teardown_leaves_a_second_daemon_in_the_same_namespace_alone(
    daemons: Callable[..., RunningDaemon],
) -> None:
    needs_volumes()
    first = daemons({"server": {"nodeId": "teardown-first"}})
    second = daemons(
        {
            "server": {"nodeId": "teardown-second"},
            "network": {"bridgeCidr": "10.206.0.0/24", "isolatedPool": "10.207.0.0/24"},
        },
        world=first.world,
    )
    assert daemon_prefix("teardown-first") != daemon_prefix("teardown-second")
    for d in (first, second):
        pb_grpc.VolumeServiceStub(d.channel()).CreateVolume(
            pb.CreateVolumeReq(name="data", size="16MiB")
        )
        assert run_to_end(d, "echo hi > /volumes/data/f", volumes=["data"]).exitCode == 0
    running = run(second, "sleep", "600", volumes=["data"])
    wait_status(second.jobs(), running, {"RUNNING"})
    first.kill9()
    first_launcher = first.launcher_pid()
    assert alive(first_launcher) and links(first) and loop_devices(first)

    done = teardown(first)
    assert done.returncode == 0, done.stderr
    assert not alive(first_launcher)
    assert_nothing_left(first)
    assert not (first.root / "volumes" / "data" / "mnt").is_mount()

    assert alive(second.launcher_pid())
    assert cgroup_groups(second) and has_table(second) and len(links(second)) >= 2
    assert len(loop_devices(second)) == 1
    assert (second.root / "volumes" / "data" / "mnt").is_mount()
    assert second.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=running)).status == "RUNNING"
    with contextlib.suppress(Exception):
        second.jobs().StopJob(pb.StopJobReq(uuid=running))


def test_teardown_leaves_a_job_group_another_root_made_under_a_shared_parent(
    daemons: Callable[..., RunningDaemon],
) -> None:
    daemon = daemons()
    assert run_to_end(daemon, "exit 0").status == "COMPLETED"
    daemon.kill9()
    # A parent shared by mistake: another root's job, running in a group of its own.
    manager = create_cgroup_manager(CGROUP_ROOT, daemon.cgroup_parent())
    group = manager.create(str(uuid.uuid4()), Limits())
    files = " ".join(str(p) for p in group.procs_files())
    script = f'for f in {files}; do echo $$ > "$f"; done; exec sleep 600'
    stranger = subprocess.Popen(["sh", "-c", script])
    try:
        wait_until(lambda: stranger.pid in group.pids(), 10, "the stranger in its group")
        done = teardown(daemon, "--force")
        assert done.returncode == 1
        assert done.stderr.splitlines() == [
            "joblet: error: not removed: cgroups: the parent also holds 1 job group(s)"
            f" not made under {daemon.root}; they and the parent stay"
        ]
        assert stranger.poll() is None and group.pids() == [stranger.pid]
        assert manager.leftover_job_ids() == [group.job_id]
        assert launcher_processes(daemon) == [] and links(daemon) == [] and not has_table(daemon)
    finally:
        stranger.kill()
        stranger.wait()
