"""A job cannot make a user namespace by any of the three calls that do it.

In a user namespace of its own a job would hold every capability over the
namespaces it then creates (mount, network...), and each one is new kernel
surface. unshare(2) and clone(2) with CLONE_NEWUSER fail with EPERM; clone3(2)
passes its flags in a struct the filter cannot read, so it is refused whole
(ENOSYS: libc falls back to clone). Tried from inside a real job with raw
system calls; a plain fork through clone(2) must still work."""

from __future__ import annotations

import platform

import pytest
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = [
    pytest.mark.integration,
    pytest.mark.privileged,
    pytest.mark.skipif(platform.machine() != "x86_64", reason="the probe uses x86_64 numbers"),
]

PROBE = r"""
import ctypes, errno, os, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
CLONE, CLONE3, UNSHARE = 56, 435, 272

def attempt(name, number, *args):
    ctypes.set_errno(0)
    pid = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    if pid == 0:
        os._exit(0)  # a child the call made: it only has to end
    err = ctypes.get_errno()
    if pid > 0:
        os.waitpid(pid, 0)
    print(f"{name}=" + ("ok" if pid >= 0 else errno.errorcode.get(err, str(err))), flush=True)

attempt("clone_fork", CLONE, SIGCHLD, 0, 0, 0, 0)
attempt("clone_newuser", CLONE, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
# struct clone_args, its first version (64 bytes): flags, pidfd, child_tid,
# parent_tid, exit_signal, stack, stack_size, tls.
args = ctypes.create_string_buffer(struct.pack("=8Q", CLONE_NEWUSER, 0, 0, 0, SIGCHLD, 0, 0, 0))
attempt("clone3_newuser", CLONE3, ctypes.addressof(args), 64)
attempt("unshare_newuser", UNSHARE, CLONE_NEWUSER)  # last: it would change this process
"""


@pytest.fixture(scope="module")
def results(daemon: RunningDaemon) -> dict[str, str]:
    stub = daemon.jobs()
    job = stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", PROBE]))
    status = wait_status(stub, job.jobUuid, {"COMPLETED", "FAILED"}, timeout=60)
    logs = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid, noFollow=True))
    out = b"".join(chunk.payload for chunk in logs).decode()
    assert status.exitCode == 0, out
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_a_plain_fork_through_clone_works(results: dict[str, str]) -> None:
    assert results["clone_fork"] == "ok", results


def test_clone_and_unshare_with_a_new_user_namespace_are_eperm(results: dict[str, str]) -> None:
    assert results["clone_newuser"] == "EPERM", results
    assert results["unshare_newuser"] == "EPERM", results


def test_clone3_is_not_implemented(results: dict[str, str]) -> None:
    assert results["clone3_newuser"] == "ENOSYS", results
