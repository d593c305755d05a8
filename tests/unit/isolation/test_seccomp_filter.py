"""The whole BPF program the launcher loads into every job (compile_filter),
run call by call by a classic-BPF interpreter: each syscall the security
contract names is refused with its errno, and ordinary calls are allowed.

Many refused calls fail with EPERM from a job anyway, because it lacks the
capability they check first (kexec_load, init_module, reboot, acct...): from
inside a job the filter's rule cannot be told apart from the capability
check. The program itself can, so each rule is checked here, against a list
written out in this test rather than taken from the module under test.
"""

from __future__ import annotations

import errno
import struct

import pytest

pyseccomp = pytest.importorskip("pyseccomp")

from joblet.isolation import libc  # noqa: E402
from joblet.isolation.seccomp import compile_filter  # noqa: E402

RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
RET_ACTION = 0xFFFF0000

# Refused with EPERM whatever the arguments (docker's default profile).
REFUSED = (
    "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
    "userfaultfd", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
    "fsmount", "fsconfig", "fspick", "mount_setattr", "swapon", "swapoff", "reboot",
    "open_by_handle_at", "name_to_handle_at", "acct", "lookup_dcookie", "ptrace",
    "process_vm_readv", "process_vm_writev", "quotactl", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "syslog", "iopl", "ioperm", "vhangup", "nfsservctl",
    "uselib", "sysfs", "_sysctl",
)  # fmt: skip
NOT_IMPLEMENTED = ("io_uring_setup", "io_uring_enter", "io_uring_register", "clone3")
ALLOWED = ("read", "write", "openat", "execve", "mmap", "getpid", "wait4", "kill")
NAMESPACE_FLAGS = {
    "CLONE_NEWNS": libc.CLONE_NEWNS,
    "CLONE_NEWUTS": libc.CLONE_NEWUTS,
    "CLONE_NEWIPC": libc.CLONE_NEWIPC,
    "CLONE_NEWUSER": libc.CLONE_NEWUSER,
    "CLONE_NEWPID": libc.CLONE_NEWPID,
    "CLONE_NEWNET": libc.CLONE_NEWNET,
    "CLONE_NEWCGROUP": libc.CLONE_NEWCGROUP,
}
SIGCHLD = 17
FORK_FLAGS = 0x01200000 | SIGCHLD  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID, as glibc's fork
THREAD_FLAGS = 0x003D0F00  # what glibc's pthread_create passes
AF_INET, AF_VSOCK = 2, 40


class Program:
    """A classic BPF seccomp program (linux/filter.h) and its interpreter."""

    def __init__(self, code: bytes) -> None:
        self.insns = [struct.unpack_from("=HBBI", code, at) for at in range(0, len(code), 8)]
        self.arch = int(pyseccomp.system_arch())

    def run(self, name: str, *args: int) -> int:
        nr = pyseccomp.resolve_syscall(self.arch, name)
        data = struct.pack("=iIQ6Q", nr, self.arch, 0, *args, *[0] * (6 - len(args)))
        pc, acc, x, mem = 0, 0, 0, [0] * 16
        while True:
            code, jt, jf, k = self.insns[pc]
            pc += 1
            if code == 0x20:  # ld [k]
                acc = struct.unpack_from("=I", data, k)[0]
            elif code == 0x60:  # ld M[k]
                acc = mem[k]
            elif code == 0x02:  # st M[k]
                mem[k] = acc
            elif code == 0x01:  # ldx #k
                x = k
            elif code == 0x54:  # and #k
                acc &= k
            elif code == 0x05:  # ja k
                pc += k
            elif code in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset #k
                taken = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: acc & k != 0}
                pc += jt if taken[code] else jf
            elif code == 0x06:  # ret #k
                return k
            else:
                raise AssertionError(f"instruction {code:#x} not interpreted (x={x})")


@pytest.fixture(scope="module")
def program() -> Program:
    return Program(compile_filter().code)


def errno_ret(number: int) -> int:
    return RET_ERRNO | number


def test_every_refused_call_is_eperm(program: Program) -> None:
    wrong = {
        name: hex(program.run(name))
        for name in REFUSED
        if program.run(name) != errno_ret(errno.EPERM)
    }
    assert not wrong, f"not EPERM: {wrong}"


def test_io_uring_and_clone3_are_not_implemented(program: Program) -> None:
    for name in NOT_IMPLEMENTED:
        assert program.run(name) == errno_ret(errno.ENOSYS), name


def test_clone_creates_processes_and_threads_but_no_namespace(program: Program) -> None:
    assert program.run("clone", FORK_FLAGS) == RET_ALLOW
    assert program.run("clone", THREAD_FLAGS) == RET_ALLOW
    for name, flag in NAMESPACE_FLAGS.items():
        assert program.run("clone", FORK_FLAGS | flag) == errno_ret(errno.EPERM), name


def test_vsock_sockets_are_refused_others_allowed(program: Program) -> None:
    assert program.run("socket", AF_VSOCK, 1, 0) == errno_ret(errno.EAFNOSUPPORT)
    assert program.run("socket", AF_INET, 1, 0) == RET_ALLOW


def test_personality_only_the_harmless_values(program: Program) -> None:
    assert program.run("personality", 0x0) == RET_ALLOW
    assert program.run("personality", 0xFFFFFFFF) == RET_ALLOW
    assert program.run("personality", 0x0040000) == errno_ret(errno.EPERM)  # ADDR_NO_RANDOMIZE


def test_ordinary_calls_are_allowed(program: Program) -> None:
    for name in ALLOWED:
        assert program.run(name) & RET_ACTION == RET_ALLOW, name
