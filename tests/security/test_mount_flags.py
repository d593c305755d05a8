"""Every mount of a job's root carries its flags, read from inside a real job:
statvfs(3) of each mount point, and what the flags are for, tried: a device
node the job makes (it holds CAP_MKNOD) does not open where nodev is set, and
a copy of a binary does not run where noexec is set.

setuid bits are inert in a job anyway (no_new_privs), so nosuid is checked by
its flag alone."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator

import pytest
from integration.conftest import ROOT_NEEDED, RunningDaemon, start_daemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

RDONLY, NOSUID, NODEV, NOEXEC = os.ST_RDONLY, os.ST_NOSUID, os.ST_NODEV, os.ST_NOEXEC

# Mount point -> the flags it must carry (others may be set too).
REQUIRED = {
    "/": RDONLY | NOSUID,
    "/usr": RDONLY | NOSUID | NODEV,
    "/tmp": NOSUID | NODEV,
    "/work": NOSUID | NODEV,
    "/dev": NOSUID | NODEV | NOEXEC,
    "/dev/null": RDONLY | NOSUID | NOEXEC,
    "/dev/urandom": RDONLY | NOSUID | NOEXEC,
    "/dev/shm": NOSUID | NODEV | NOEXEC,
    "/dev/pts": NOSUID | NOEXEC,
    "/proc": NOSUID | NODEV | NOEXEC,
    "/proc/sys": RDONLY | NOSUID | NODEV | NOEXEC,
    "/proc/sysrq-trigger": RDONLY | NOSUID | NODEV | NOEXEC,
    "/proc/kcore": RDONLY | NOSUID | NOEXEC,
}
# Kernel-dependent files: masked or made read-only where they exist.
OPTIONAL = frozenset({"/proc/sysrq-trigger", "/proc/kcore"})
NAMES = {RDONLY: "ro", NOSUID: "nosuid", NODEV: "nodev", NOEXEC: "noexec"}

PROBE = r"""
import json, os, shutil, stat, sys
points = json.loads(sys.argv[1])
flags = {}
for point in points:
    try:
        flags[point] = os.statvfs(point).f_flag
    except OSError as exc:
        flags[point] = -exc.errno
tried = {}
for where in ("/tmp", "/work", "/dev/shm"):
    node = where + "/null-copy"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.close(os.open(node, os.O_WRONLY))
        tried["open " + node] = 0
    except OSError as exc:
        tried["open " + node] = exc.errno
for where in ("/dev/shm", "/tmp"):
    copy = where + "/true-copy"
    shutil.copy("/bin/true", copy)
    os.chmod(copy, 0o755)
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(copy, [copy])
        except OSError as exc:
            os._exit(100 + exc.errno)
    tried["exec " + copy] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps({"flags": flags, "tried": tried}))
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """Jobs as real host ids: the mount flags are a layer of their own, and
    in a user namespace mknod is refused before nodev is ever asked."""
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_daemon(tmp_path_factory.mktemp("daemon"), userNamespace="off")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def seen(daemon: RunningDaemon) -> dict[str, dict[str, int]]:
    stub = daemon.jobs()
    job = stub.RunJob(
        pb.RunJobRequest(command="python3", args=["-c", PROBE, json.dumps(list(REQUIRED))])
    )
    status = wait_status(stub, job.jobUuid, {"COMPLETED", "FAILED"}, timeout=60)
    logs = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid, noFollow=True))
    out = b"".join(chunk.payload for chunk in logs).decode()
    assert status.exitCode == 0, out
    result: dict[str, dict[str, int]] = json.loads(out.strip().splitlines()[-1])
    return result


def _names(flags: int) -> str:
    return ",".join(name for bit, name in NAMES.items() if flags & bit) or "-"


def test_every_mount_point_carries_its_flags(seen: dict[str, dict[str, int]]) -> None:
    missing = {}
    for point, required in REQUIRED.items():
        found = seen["flags"][point]
        if found == -errno.ENOENT and point in OPTIONAL:
            continue
        assert found >= 0, f"{point}: {os.strerror(-found)}"
        if found & required != required:
            missing[point] = f"has {_names(found)}, lacks {_names(required & ~found)}"
    assert not missing, missing


def test_device_nodes_made_in_the_job_do_not_open(seen: dict[str, dict[str, int]]) -> None:
    for where in ("/tmp", "/work", "/dev/shm"):
        assert seen["tried"][f"open {where}/null-copy"] == errno.EACCES, seen["tried"]


def test_binaries_do_not_run_from_dev_shm(seen: dict[str, dict[str, int]]) -> None:
    assert seen["tried"]["exec /dev/shm/true-copy"] == 100 + errno.EACCES, seen["tried"]
    assert seen["tried"]["exec /tmp/true-copy"] == 0, seen["tried"]  # /tmp is not noexec
