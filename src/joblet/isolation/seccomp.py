"""The job's seccomp filter: allow by default, EPERM for what container
runtimes block by default (docker's profile, moby/profiles/seccomp)."""

from __future__ import annotations

import errno
import struct
import sys
import tempfile
from typing import Any

from joblet.isolation import libc
from joblet.workspaces.btrfs import SUBVOLUME_MAKERS

BLOCKED_SYSCALLS: tuple[str, ...] = (
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
    "swapon",
    "swapoff",
    "reboot",
    "open_by_handle_at",
    "name_to_handle_at",
    "acct",
    "lookup_dcookie",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "syslog",
    "iopl",
    "ioperm",
    "vhangup",
    "nfsservctl",
    "uselib",
    "sysfs",
    "_sysctl",
)

# io_uring runs I/O in kernel workers that seccomp does not see, and has been
# a rich source of kernel bugs; docker blocks it too. ENOSYS: a program
# (liburing, tokio) takes it for an old kernel and falls back to plain I/O.
NOT_IMPLEMENTED_SYSCALLS: tuple[str, ...] = (
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)

AF_VSOCK = 40  # sockets to the hypervisor and its other guests: not a job's business

# personality(2) values a job may set (docker's profile): Linux, its 32-bit
# variant, UNAME26, both, and 0xffffffff, which only asks. Others switch off
# address space randomisation (ADDR_NO_RANDOMIZE) or make data executable
# (READ_IMPLIES_EXEC).
PERSONALITY_ALLOWED: tuple[int, ...] = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# clone(2) may still create processes and threads, but not new namespaces.
NAMESPACE_FLAGS: tuple[int, ...] = (
    libc.CLONE_NEWNS,
    libc.CLONE_NEWUTS,
    libc.CLONE_NEWIPC,
    libc.CLONE_NEWUSER,
    libc.CLONE_NEWPID,
    libc.CLONE_NEWNET,
    libc.CLONE_NEWCGROUP,
)


# ioctl(2) requests a job may not make: a btrfs subvolume or snapshot of its
# own would escape its workspace's size limit (joblet.workspaces). The kernel
# reads the request as 32 bits, so only those are compared.
BLOCKED_IOCTLS: tuple[int, ...] = SUBVOLUME_MAKERS


def build_filter() -> Any:
    """A loaded-on-demand pyseccomp filter; call `.load()` in the job process.

    clone3(2) passes its flags in a struct seccomp cannot inspect, so it fails
    with ENOSYS and libc falls back to clone(2), whose flags are checked.
    """
    import pyseccomp

    filt = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    eperm = pyseccomp.ERRNO(errno.EPERM)
    for name in BLOCKED_SYSCALLS:
        try:
            filt.add_rule(eperm, name)
        except (ValueError, OSError):
            continue  # not a syscall on this architecture
    for flag in NAMESPACE_FLAGS:
        filt.add_rule(eperm, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    filt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    for name in NOT_IMPLEMENTED_SYSCALLS:
        try:
            filt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), name)
        except (ValueError, OSError):
            continue  # not known to this libseccomp: then not to its kernel either
    filt.add_rule(
        pyseccomp.ERRNO(errno.EAFNOSUPPORT), "socket", pyseccomp.Arg(0, pyseccomp.EQ, AF_VSOCK)
    )
    for request in BLOCKED_IOCTLS:
        filt.add_rule(eperm, "ioctl", pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xFFFFFFFF, request))
    return filt


def compile_filter() -> libc.BpfProgram:
    """The filter compiled once to BPF: libseccomp's load() would recompile it
    in every job, which costs most of a millisecond."""
    import pyseccomp

    with tempfile.TemporaryFile() as f:
        build_filter().export_bpf(f)
        f.seek(0)
        code = f.read()
    arch = int(pyseccomp.system_arch())
    number = pyseccomp.resolve_syscall(arch, "personality")
    return libc.BpfProgram(personality_prefix(arch, number, sys.byteorder) + code)


# Classic BPF (linux/filter.h, linux/seccomp.h): what personality_prefix uses.
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_RET_K = 0x06
_RET_ERRNO = 0x00050000
_NR_AT, _ARCH_AT, _ARG0_AT = 0, 4, 16  # offsets in struct seccomp_data


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def personality_prefix(arch: int, number: int, byteorder: str) -> bytes:
    """BPF to run before libseccomp's program: personality(2) with a persona
    not in PERSONALITY_ALLOWED fails with EPERM; every other call (and every
    call of another architecture) goes on to the instruction after it.

    libseccomp cannot say "none of these values" (a rule compares an argument
    once), so the check is written out. Only the low 32 bits are compared: the
    kernel takes the persona as an unsigned int.
    """
    low_half = _ARG0_AT if byteorder == "little" else _ARG0_AT + 4
    count = 6 + len(PERSONALITY_ALLOWED)  # instructions in the prefix

    def to_end(index: int) -> int:
        return count - index - 1  # jump offsets count from the next instruction

    code = [
        _insn(_LD_W_ABS, 0, 0, _ARCH_AT),
        _insn(_JEQ_K, 0, to_end(1), arch),
        _insn(_LD_W_ABS, 0, 0, _NR_AT),
        _insn(_JEQ_K, 0, to_end(3), number),
        _insn(_LD_W_ABS, 0, 0, low_half),
    ]
    for value in PERSONALITY_ALLOWED:
        code.append(_insn(_JEQ_K, to_end(len(code)), 0, value))
    code.append(_insn(_RET_K, 0, 0, _RET_ERRNO | errno.EPERM))
    assert len(code) == count
    return b"".join(code)
