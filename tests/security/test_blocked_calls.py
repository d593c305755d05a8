"""The seccomp filter's EPERM, seen from inside a real job, for each blocked
call whose arguments the kernel would otherwise check first.

Every call here gets arguments the kernel refuses for another reason (a bad
pointer, flags, descriptor or id: EFAULT, EINVAL, EBADF, ESRCH, ENOSYS) or
needs no privilege at all (userfaultfd for user mode, process_vm_readv of
nothing), so EPERM can only come from the filter. Calls whose capability
check comes first (kexec_load, init_module, reboot, acct, syslog...) answer
EPERM from a job with or without the filter; the compiled program's rule for
each of them is checked in tests/unit/isolation/test_seccomp_filter.py."""

from __future__ import annotations

import json
import platform

import pytest
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = [
    pytest.mark.integration,
    pytest.mark.privileged,
    pytest.mark.skipif(platform.machine() != "x86_64", reason="iopl and ioperm are x86's"),
]

pyseccomp = pytest.importorskip("pyseccomp")

BAD_POINTER = 1
NOWHERE = "/nonexistent"  # stands for a path argument: replaced by a C string

# (call, arguments); each would fail otherwise than EPERM without the filter.
CALLS: tuple[tuple[str, tuple[int | str, ...]], ...] = (
    ("setns", (-1, 0)),  # EBADF
    ("add_key", (0, 0, 0, 0, 0)),  # EFAULT
    ("request_key", (0, 0, 0, 0)),  # EFAULT
    ("bpf", (9999, 0, 0)),  # EINVAL: no such command
    ("perf_event_open", (0, 0, -1, -1, 0)),  # EFAULT
    ("userfaultfd", (1,)),  # UFFD_USER_MODE_ONLY: allowed without privilege
    ("mount", (0, 0, BAD_POINTER, 0, 0)),  # EFAULT copying the type
    ("umount2", (NOWHERE, 0xFF00)),  # EINVAL: unknown flags
    ("open_tree", (-1, 0, 0xFFFFFFFF)),  # EINVAL
    ("move_mount", (-1, 0, -1, 0, 0xFFFFFFFF)),  # EINVAL
    ("fsconfig", (-1, 0, 0, 0, 0)),  # EINVAL / EBADF
    ("mount_setattr", (-1, 0, 0xFFFFFFFF, 0, 0)),  # EINVAL
    ("swapon", (0, 0xFFFFFFFF)),  # EINVAL: unknown flags
    ("name_to_handle_at", (-1, 0, 0, 0, 0xFFFFFFFF)),  # EINVAL
    ("ptrace", (0xDEAD, 999999, 0, 0)),  # ESRCH
    ("process_vm_readv", (1, 0, 0, 0, 0, 0)),  # reads nothing: 0
    ("quotactl", (0, 0, 0, 0)),  # ENODEV
    ("settimeofday", (BAD_POINTER, 0)),  # EFAULT
    ("clock_settime", (9999, 0)),  # EINVAL: no such clock
    ("clock_adjtime", (9999, 0)),  # EINVAL
    ("adjtimex", (BAD_POINTER,)),  # EFAULT
    ("iopl", (99,)),  # EINVAL
    ("ioperm", (0x10000, 1, 1)),  # EINVAL: past the bitmap
    ("lookup_dcookie", (0, 0, 0)),  # ENOSYS in kernels without it
    ("nfsservctl", (0, 0, 0)),  # ENOSYS
    ("_sysctl", (0,)),  # ENOSYS
)

PROBE = r"""
import ctypes, errno, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
keep = []
def arg(value):
    if isinstance(value, str):
        keep.append(ctypes.create_string_buffer(value.encode()))
        return ctypes.c_long(ctypes.addressof(keep[-1]))
    return ctypes.c_long(value)
for name, number, args in json.loads(sys.argv[1]):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(number), *(arg(a) for a in args))
    err = ctypes.get_errno()
    print(f"{name}=" + ("ok" if result >= 0 else errno.errorcode.get(err, str(err))), flush=True)
"""


@pytest.fixture(scope="module")
def results(daemon: RunningDaemon) -> dict[str, str]:
    arch = int(pyseccomp.system_arch())
    calls = [(name, pyseccomp.resolve_syscall(arch, name), args) for name, args in CALLS]
    stub = daemon.jobs()
    job = stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", PROBE, json.dumps(calls)]))
    status = wait_status(stub, job.jobUuid, {"COMPLETED", "FAILED"}, timeout=60)
    logs = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid, noFollow=True))
    out = b"".join(chunk.payload for chunk in logs).decode()
    assert status.exitCode == 0, out
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_each_call_is_refused_by_the_filter(results: dict[str, str]) -> None:
    assert set(results) == {name for name, _ in CALLS}
    wrong = {name: found for name, found in results.items() if found != "EPERM"}
    assert not wrong, wrong
