"""What the seccomp filter and the /proc masks refuse, tried from inside a
real job: io_uring, AF_VSOCK sockets, personality(2) beyond the harmless
values, and the kernel heap's layout in /proc."""

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

# Each probe prints one "name=result" line: "ok" or the errno's name.
PROBE = r"""
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def syscall(name, number, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    err = ctypes.get_errno()
    print(f"{name}=" + ("ok" if result >= 0 else errno.errorcode.get(err, str(err))))

params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
syscall("io_uring_setup", 425, 4, ctypes.addressof(params))
syscall("io_uring_enter", 426, -1, 0, 0, 0, 0, 0)
syscall("io_uring_register", 427, -1, 0, 0, 0)
for persona in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF, 0x0040000, 0x0400000, 0x1):
    syscall(f"personality_{persona:#x}", 135, persona)
    libc.syscall(ctypes.c_long(135), ctypes.c_long(0))  # back to PER_LINUX
try:
    socket.socket(40, socket.SOCK_STREAM).close()
    print("vsock=ok")
except OSError as exc:
    print("vsock=" + errno.errorcode.get(exc.errno, str(exc.errno)))
for name in ("slabinfo", "vmallocinfo"):
    try:
        with open(f"/proc/{name}", "rb") as f:
            print(f"{name}=" + ("empty" if not f.read() else "readable"))
    except OSError as exc:
        print(f"{name}=" + errno.errorcode.get(exc.errno, str(exc.errno)))
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


def test_io_uring_is_not_implemented(results: dict[str, str]) -> None:
    for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert results[name] == "ENOSYS", results


def test_vsock_sockets_are_refused(results: dict[str, str]) -> None:
    assert results["vsock"] in ("EAFNOSUPPORT", "EPERM"), results


def test_personality_only_the_harmless_values(results: dict[str, str]) -> None:
    for persona in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert results[f"personality_{persona:#x}"] == "ok", results
    for persona in (0x0040000, 0x0400000, 0x1):  # ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC
        assert results[f"personality_{persona:#x}"] == "EPERM", results


def test_kernel_heap_layout_is_masked(results: dict[str, str]) -> None:
    assert results["slabinfo"] in ("empty", "ENOENT"), results
    assert results["vmallocinfo"] in ("empty", "ENOENT"), results
