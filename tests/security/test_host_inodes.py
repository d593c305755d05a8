"""No job may change a host inode's metadata: chmod, chown, utime and setxattr
tried from inside a real job on everything a job reaches that is, or was, a
host inode (its init's /proc/1/exe, its command's /proc/self/exe, the device
nodes of its /dev, the /proc masks), each checked against the host's inode
after the job.

The attacks change nothing if they succeed (the mode, owner and times a
path already has; xattrs the host's inodes do not carry), and whatever
they changed anyway is put back at once: a run without the protections must
never leave the host's /dev/null or tini altered. Their success shows in
the job's report and in the host inode's ctime, which every change moves.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb
from joblet.isolation.prepare import find_tini
from joblet.isolation.rootfs import DEVICES, MASKED_PROC_FILES

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

XATTRS = ("user.joblet-test", "trusted.joblet-test")
# Each attack on each path given, one JSON line per path: op -> "ok" or the errno's name.
ATTACK = r"""
import errno, json, os, sys

def attempt(call):
    try:
        call()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))

def write_open(path):
    os.close(os.open(path, os.O_WRONLY))

for path in sys.argv[1:]:
    try:
        st = os.stat(path)
    except OSError as exc:
        print(json.dumps({"path": path, "stat": errno.errorcode[exc.errno]}))
        continue
    ops = {
        "chmod": lambda: os.chmod(path, st.st_mode & 0o7777),
        "chown": lambda: os.chown(path, st.st_uid, st.st_gid),
        "utime": lambda: os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns)),
        "utime_now": lambda: os.utime(path),
        "user_xattr": lambda: os.setxattr(path, "user.joblet-test", b"1"),
        "trusted_xattr": lambda: os.setxattr(path, "trusted.joblet-test", b"1"),
    }
    if path.endswith("/exe"):
        ops["write_open"] = lambda: write_open(path)
    result = {op: attempt(call) for op, call in ops.items()}
    print(json.dumps({"path": path, "link": os.path.realpath(path), **result}))
"""


@dataclass(frozen=True)
class InodeState:
    mode: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    xattrs: tuple[tuple[str, bytes], ...]

    def compared(self) -> tuple[object, ...]:
        """Everything a change would move (atime moves on its own as files are read)."""
        return self.mode, self.uid, self.gid, self.mtime_ns, self.ctime_ns, self.xattrs


def inode_state(path: str) -> InodeState:
    st = os.stat(path)
    try:
        names = sorted(os.listxattr(path))
    except OSError as exc:
        if exc.errno != errno.EOPNOTSUPP:
            raise
        names = []
    xattrs = tuple((name, os.getxattr(path, name)) for name in names)
    return InodeState(st.st_mode, st.st_uid, st.st_gid, st.st_atime_ns, st.st_mtime_ns,
                      st.st_ctime_ns, xattrs)  # fmt: skip


def restore(path: str, before: InodeState) -> None:
    """Put back what an attack changed (all but ctime, which only the kernel sets)."""
    os.chown(path, before.uid, before.gid)
    os.chmod(path, before.mode & 0o7777)  # after chown, which drops setuid bits
    os.utime(path, ns=(before.atime_ns, before.mtime_ns))
    kept = dict(before.xattrs)
    for name in XATTRS:
        if name not in kept:
            with contextlib.suppress(OSError):
                os.removexattr(path, name)


@contextlib.contextmanager
def guarded(paths: list[str]) -> Iterator[dict[str, InodeState]]:
    """The host inodes' state before; each restored after, whatever happened."""
    before = {path: inode_state(path) for path in paths}
    try:
        yield before
    finally:
        for path, state in before.items():
            if inode_state(path).compared() != state.compared():
                restore(path, state)


def run_python(daemon: RunningDaemon, code: str, *args: str) -> str:
    stub = daemon.jobs()
    job = stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", code, *args]))
    status = wait_status(stub, job.jobUuid, {"COMPLETED", "FAILED"}, timeout=60)
    logs = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid, noFollow=True))
    out = b"".join(chunk.payload for chunk in logs).decode()
    assert status.exitCode == 0, out
    return out


def attack(daemon: RunningDaemon, paths: list[str]) -> dict[str, dict[str, str]]:
    out = run_python(daemon, ATTACK, *paths)
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {report.pop("path"): report for report in reports}


def assert_all_refused(reports: dict[str, dict[str, str]], paths: list[str]) -> None:
    for path in paths:
        report = reports[path]
        assert "stat" not in report, (path, report)
        succeeded = [op for op, result in report.items() if result == "ok"]
        assert not succeeded, (path, report)


def assert_unchanged(before: dict[str, InodeState]) -> None:
    changed = {p: (s, inode_state(p)) for p, s in before.items()
               if inode_state(p).compared() != s.compared()}  # fmt: skip
    assert not changed, changed


def test_the_init_runs_from_a_sealed_copy_not_the_hosts_tini(daemon: RunningDaemon) -> None:
    tini = os.path.realpath(find_tini())
    with guarded([tini]) as before:
        reports = attack(daemon, ["/proc/1/exe"])
        assert_unchanged(before)
    assert_all_refused(reports, ["/proc/1/exe"])
    link = reports["/proc/1/exe"]["link"]
    assert link.startswith("/memfd:tini"), link
    assert reports["/proc/1/exe"]["write_open"] == "EPERM", reports  # sealed, immutable


def test_the_command_runs_from_a_read_only_bind(daemon: RunningDaemon) -> None:
    """/proc/self/exe of the job's command is its file in the root's
    read-only binds of host directories: every change is EROFS."""
    host_python = run_python(daemon, "import os; print(os.readlink('/proc/self/exe'))").strip()
    assert os.path.isfile(host_python), host_python  # the binds keep host paths
    with guarded([host_python]) as before:
        reports = attack(daemon, ["/proc/self/exe"])
        assert_unchanged(before)
    assert_all_refused(reports, ["/proc/self/exe"])
    report = reports["/proc/self/exe"]
    assert report["link"] == host_python
    assert {report[op] for op in ("chmod", "chown", "utime", "utime_now")} == {"EROFS"}


def test_device_nodes_and_proc_masks_are_read_only_binds(daemon: RunningDaemon) -> None:
    devices = [f"/dev/{name}" for name in DEVICES]
    masks = [f"/proc/{name}" for name in MASKED_PROC_FILES
             if os.path.exists(f"/proc/{name}")]  # fmt: skip
    stdin = ["/proc/self/fd/0"]  # the job's /dev/null, opened by its init
    with guarded(devices) as before:
        reports = attack(daemon, devices + masks + stdin)
        assert_unchanged(before)
    assert_all_refused(reports, devices + masks + stdin)
    assert reports[stdin[0]]["link"] == "/dev/null"
    for path in devices + masks + stdin:
        assert reports[path]["chmod"] == "EROFS", (path, reports[path])


def test_the_devices_still_work(daemon: RunningDaemon) -> None:
    code = (
        "import os\n"
        "with open('/dev/null', 'wb') as f: f.write(b'x')\n"
        "with open('/dev/full', 'wb', buffering=0) as f:\n"
        "    try: f.write(b'x')\n"
        "    except OSError as e: print('full', e.errno)\n"
        "print(len(open('/dev/zero', 'rb').read(8)), len(open('/dev/urandom', 'rb').read(8)))\n"
        "print(len(open('/proc/keys', 'rb').read()) if os.path.exists('/proc/keys') else 0)\n"
    )
    out = run_python(daemon, code).split("\n")
    assert out[:3] == [f"full {errno.ENOSPC}", "8 8", "0"], out
