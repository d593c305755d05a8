"""Two daemons on one host: each owns its cgroup parent. A second daemon of
another root refuses a parent that is owned and never touches the owner's jobs;
on a parent of its own it runs beside the first one."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.resources.detect import create_cgroup_manager
from joblet.resources.interface import Limits

from .conftest import (
    ROOT_NEEDED,
    RunningDaemon,
    _serve,
    _stop_launcher,
    launch_daemon,
    wait_status,
    write_test_config,
)
from .netns import Netns, in_netns

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
# Runs until the test creates /work/go in the job's workspace, then exits 7.
WAIT_FOR_GO = "while [ ! -e /work/go ]; do sleep 0.05; done; echo released; exit 7"
# Long enough for a refusing daemon on a loaded host; a start that does not
# refuse is seen listening well before.
SETTLE_S = 40.0
PORT_B = 50051  # inside the second daemon's own namespace: always free


@pytest.fixture
def daemon_a(tmp_path: Path) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = launch_daemon(tmp_path / "a")
    yield running
    running.stop()


def start_waiting_job(daemon: RunningDaemon) -> str:
    stub = daemon.jobs()
    job_id = str(stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", WAIT_FOR_GO])).jobUuid)
    wait_status(stub, job_id, {"RUNNING"})
    return job_id


def release_and_wait(daemon: RunningDaemon, job_id: str) -> pb.GetJobStatusRes:
    """Let the job end, then its final status as the daemon reports it."""
    stub: pb_grpc.JobServiceStub = daemon.jobs()
    status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
    assert status.status == "RUNNING", (status.status, status.exitCode, status.endReason)
    (daemon.workspace(job_id) / "go").touch()
    return wait_status(stub, job_id, FINAL, timeout=30)


def _listening(world: Netns) -> bool:
    def probe() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", PORT_B)) == 0

    return in_netns(world.netns, probe)


def serve_on_parent(tmp: Path, parent: str) -> tuple[subprocess.Popen[bytes], Path, Netns, Path]:
    """`joblet setup` + `joblet serve` of a new root on `parent`, in a namespace
    of its own; returns without waiting (the start may be refused)."""
    world = Netns()
    try:
        config = write_test_config(tmp / "root", PORT_B, {"cgroup": {"parent": parent}})
        log_path = tmp / "daemon.log"
        return _serve(world, config, log_path, None), log_path, world, tmp / "root"
    except BaseException:
        world.close()
        raise


def settle(proc: subprocess.Popen[bytes], world: Netns) -> int | None:
    """The exit code once the daemon exits, None once it listens instead."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            return code
        if _listening(world):
            return None
        time.sleep(0.05)
    raise AssertionError("the second daemon neither refused nor started")


def test_second_root_on_an_owned_parent_refuses_and_leaves_the_jobs(
    daemon_a: RunningDaemon, tmp_path: Path
) -> None:
    job_id = start_waiting_job(daemon_a)
    parent = daemon_a.cgroup_parent()

    proc, log_path, world, root_b = serve_on_parent(tmp_path / "b", parent)
    try:
        code = settle(proc, world)
        # A start that removed A's job group killed the job before it listened:
        # the job's final exit code shows it.
        status = release_and_wait(daemon_a, job_id)
        assert (status.status, status.exitCode) == ("FAILED", 7), status.endReason
        assert code is not None and code != 0, "the second daemon started"
        lines = [line for line in log_path.read_text().splitlines() if line.strip()]
        assert "Traceback" not in log_path.read_text()
        # `nsenter` execs the daemon: A's pid is its Popen's.
        assert str(daemon_a.root) in lines[-1], lines[-1]
        assert f"pid {daemon_a.proc.pid}" in lines[-1], lines[-1]
    finally:
        _end(proc, root_b, world)


def test_second_root_on_a_parent_of_its_own_leaves_the_jobs(
    daemon_a: RunningDaemon, tmp_path: Path
) -> None:
    job_id = start_waiting_job(daemon_a)
    daemon_b = launch_daemon(tmp_path / "b")
    try:
        assert daemon_b.cgroup_parent() != daemon_a.cgroup_parent()
        other = start_waiting_job(daemon_b)
        status = release_and_wait(daemon_a, job_id)
        assert (status.status, status.exitCode) == ("FAILED", 7), status.endReason
        status = release_and_wait(daemon_b, other)
        assert (status.status, status.exitCode) == ("FAILED", 7), status.endReason
    finally:
        daemon_b.stop()


def test_a_dead_owners_jobs_keep_the_parent_from_another_root(
    daemon_a: RunningDaemon, tmp_path: Path
) -> None:
    """A's daemon is gone but its launcher still runs A's job: B must not take
    the parent over (it would remove the job's group); A restarting gets it back."""
    job_id = start_waiting_job(daemon_a)
    daemon_a.kill9()

    proc, log_path, world, root_b = serve_on_parent(tmp_path / "b", daemon_a.cgroup_parent())
    try:
        code = settle(proc, world)
        assert code is not None and code != 0, "the second daemon started"
        assert str(daemon_a.root) in log_path.read_text().splitlines()[-1]
    finally:
        _end(proc, root_b, world)

    daemon_a.restart()
    status = release_and_wait(daemon_a, job_id)
    assert (status.status, status.exitCode) == ("FAILED", 7), status.endReason


def _end(proc: subprocess.Popen[bytes], root: Path, world: Netns) -> None:
    """Stop a second daemon that may have started after all, and its launcher."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _stop_launcher(root)
    with contextlib.suppress(OSError):
        world.close()


def test_a_restart_leaves_job_groups_it_cannot_prove_are_its_own(
    daemon_a: RunningDaemon,
) -> None:
    """A job group under the parent that this root never made (no job directory
    under the root) survives the start's leftover cleanup, with its process."""
    foreign_id = str(uuid.uuid4())
    cgroups = create_cgroup_manager(Path("/sys/fs/cgroup"), daemon_a.cgroup_parent())
    group = cgroups.create(foreign_id, Limits())
    with subprocess.Popen(["sleep", "120"]) as sleeper:
        try:
            for procs in group.procs_files():
                procs.write_text(str(sleeper.pid))
            daemon_a.kill9()
            daemon_a.restart()
            job_id = start_waiting_job(daemon_a)  # the start, cleanup included, is over
            assert sleeper.poll() is None, "the foreign group's process was killed"
            assert foreign_id in cgroups.leftover_job_ids()
            status = release_and_wait(daemon_a, job_id)
            assert (status.status, status.exitCode) == ("FAILED", 7), status.endReason
        finally:
            sleeper.kill()
            sleeper.wait()
            group.kill_all()
            group.remove()


def test_the_demo_leaves_a_running_daemons_jobs_alone(
    daemon_a: RunningDaemon, tmp_path: Path
) -> None:
    """`make demo` beside a running daemon: the demo works, with a cgroup parent
    of its own, and the daemon's job ends with its real exit code."""
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".venv" / "bin" / "joblet").exists():
        pytest.skip("the demo runs .venv/bin/joblet: `make install` first")
    job_id = start_waiting_job(daemon_a)
    env = {**os.environ, "JOBLET_DEMO_ROOT": str(tmp_path / "demo")}
    script = f"ip link set lo up && exec bash {repo / 'scripts' / 'demo.sh'}"
    done = subprocess.run(
        ["unshare", "--net", "bash", "-c", script],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hello from demo" in done.stdout
    assert "+ cgroup parent: joblet-demo" in done.stdout
    status = release_and_wait(daemon_a, job_id)
    assert (status.status, status.exitCode) == ("FAILED", 7), status.endReason
