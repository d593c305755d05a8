"""The job's seccomp filter: allow by default, EPERM for what container
runtimes block by default (docker's profile, moby/profiles/seccomp)."""

from __future__ import annotations

import errno
import tempfile
from typing import Any

from joblet.isolation import libc

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
    return filt


def compile_filter() -> libc.BpfProgram:
    """The filter compiled once to BPF: libseccomp's load() would recompile it
    in every job, which costs most of a millisecond."""
    with tempfile.TemporaryFile() as f:
        build_filter().export_bpf(f)
        f.seek(0)
        code = f.read()
    return libc.BpfProgram(code)
