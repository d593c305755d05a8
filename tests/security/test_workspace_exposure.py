"""What a job leaves in its workspace cannot be used by other users of the host.

Jobs run as real uid 0 (no user namespace), so a job can leave a setuid-root
binary or a world-writable device node in /work, on the host's disk. Other
host users must not be able to reach them, and the host must not honour them.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from integration.conftest import RunningDaemon, start_daemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = pytest.mark.integration

NOBODY = 65534
# A setuid-root shell and, when the job may mknod, a 0666 node for /dev/null.
PLANT = (
    "cp /bin/sh /work/rootsh && chmod 4755 /work/rootsh; "
    "if mknod /work/null c 1 3 2>/work/mknod.err; then chmod 666 /work/null; fi; "
    "echo secret > /work/data"
)


def as_nobody(action: Callable[[], None]) -> int:
    """Run `action` in a forked child as uid/gid 65534; the errno it failed
    with (0 when it succeeded)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            action()
        except OSError as exc:
            code = exc.errno or 255
        except BaseException:
            code = 254
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _planted(daemon: RunningDaemon) -> Path:
    stub = daemon.jobs()
    job_id = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", PLANT])).jobUuid
    wait_status(stub, job_id, {"COMPLETED"}, timeout=60)
    return daemon.workspace(job_id)


def test_other_users_cannot_reach_a_workspace(daemon: RunningDaemon) -> None:
    work = _planted(daemon)
    assert work.joinpath("rootsh").stat().st_mode & stat.S_ISUID, "the job could not plant"
    for path in (daemon.root / "jobs", work.parent, work):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, oct(path.stat().st_mode)
    assert as_nobody(lambda: os.listdir(work)) == errno.EACCES
    assert as_nobody(lambda: os.listdir(daemon.root / "jobs")) == errno.EACCES
    assert as_nobody(lambda: os.execv(work / "rootsh", ["sh", "-c", "true"])) == errno.EACCES
    assert as_nobody(lambda: os.close(os.open(work / "data", os.O_RDONLY))) == errno.EACCES


def test_a_running_jobs_log_is_private(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = stub.RunJob(pb.RunJobRequest(command="sleep", args=["30"])).jobUuid
    try:
        wait_status(stub, job_id, {"RUNNING"})
        log = daemon.root / "jobs" / job_id / "output.log"
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, oct(log.stat().st_mode)
        for path in (daemon.root / "logs", daemon.root / "metrics", daemon.root / "state"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    finally:
        stub.StopJob(pb.StopJobReq(uuid=job_id))


@pytest.fixture(scope="module")
def plain_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """Workspaces as plain directories under ROOT/jobs (joblet.maxWorkspaceSize: 0)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    running = start_daemon(tmp_path_factory.mktemp("plain"), maxWorkspaceSize=0)
    yield running
    running.stop()


@pytest.mark.parametrize("which", ["daemon", "plain_daemon"])
def test_the_host_ignores_setuid_and_device_nodes_in_workspaces(
    which: str, request: pytest.FixtureRequest
) -> None:
    daemon: RunningDaemon = request.getfixturevalue(which)
    work = _planted(daemon)
    flags = os.statvfs(work).f_flag
    assert flags & os.ST_NOSUID and flags & os.ST_NODEV, "workspaces are suid/dev on the host"
    node = work / "null"
    if not node.exists():
        reason = work.joinpath("mknod.err").read_text().strip()
        assert "Operation not permitted" in reason, reason
        return
    assert stat.S_ISCHR(node.stat().st_mode)
    # nodev: not even root on the host can open the node through this mount
    with pytest.raises(PermissionError):
        os.open(node, os.O_RDWR)


def test_a_clean_stop_removes_the_jobs_mount(make_daemon: Callable[..., RunningDaemon]) -> None:
    daemon = make_daemon()
    jobs = os.path.realpath(daemon.root / "jobs")
    assert _is_mount_point(jobs)
    daemon.stop_daemon_only()
    assert not _is_mount_point(jobs)


def _is_mount_point(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)
