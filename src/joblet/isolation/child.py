"""What runs between clone and exec: the job's init before it becomes tini.

The launcher prepares everything (`Prepared`) and then clones the child
straight into its new pid, mount, uts, ipc and network namespaces (one
process: no forker in between; the launcher, a child subreaper, reaps it).
The child joins the job's cgroups, takes a cgroup namespace rooted there,
wires its network, builds the root, pivots into it, hardens itself and execs
tini, which runs the user's command. It only makes system calls and never
returns: it execs or `_exit`s.

A setup failure is written to `err_w` (close-on-exec); an exec that succeeds
closes it empty.
"""

from __future__ import annotations

import fcntl
import gc
import os
import signal
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from joblet.isolation import libc
from joblet.isolation.paths import resolve_command
from joblet.isolation.rootfs import Op, apply_plan
from joblet.network import jobside

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = struct.Struct("16sH14x")
TINI_ARGS = ("tini", "-g", "--")


class CommandNotFound(Exception):
    pass


@dataclass
class Prepared:
    """Everything a launch needs after fork, computed by the launcher."""

    job_id: str
    root: str
    ops: list[Op]
    hostname: str
    argv: tuple[str, ...]
    env: dict[str, str]
    workdir: str
    cgroup_procs: tuple[str, ...]
    uid: int
    gid: int
    unshare_flags: int
    caps_to_drop: tuple[int, ...]
    caps_keep_mask: int
    seccomp_program: libc.BpfProgram
    tini_fd: int
    stdout_w: int
    stderr_w: int
    err_w: int
    keep_fds: list[int] = field(default_factory=list)
    network: dict[str, Any] = field(default_factory=dict)  # LaunchSpec.network
    host_netns_fd: int = -1  # the launcher's network namespace


def run_init(prep: Prepared, host_sock: Any) -> None:
    """The job's init, cloned straight into its new namespaces by the launcher
    (one process instead of a forker plus an init): join the cgroup, take a
    cgroup namespace rooted there, wire the network, then as run_b."""
    gc.disable()
    try:
        for procs in prep.cgroup_procs:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")  # "0": the writer itself (see prepare.attach_file)
            finally:
                os.close(fd)
        if prep.unshare_flags & libc.CLONE_NEWCGROUP:
            libc.unshare(libc.CLONE_NEWCGROUP)
        if host_sock is not None:
            with host_sock:
                jobside.setup(prep.network, prep.host_netns_fd, host_sock)
    except BaseException as exc:
        _fail(prep.err_w, f"launch: {exc}", 126)
    run_b(prep)


def run_b(prep: Prepared) -> None:
    try:
        os.setsid()
        _build_root(prep)
        # Relative commands ("./run.sh") are looked up from the working directory.
        os.chdir(prep.workdir)
        command = _find_command(prep)
        _setup_fds(prep)
        _drop_privileges(prep)
        prep.seccomp_program.install()
        os.execve(prep.tini_fd, [*TINI_ARGS, command, *prep.argv[1:]], prep.env)
    except CommandNotFound as exc:
        _fail(prep.err_w, f"command not found: {exc}", 127)
    except BaseException as exc:
        _fail(prep.err_w, f"job setup: {exc}", 126)


def _fail(err_w: int, message: str, code: int) -> None:
    try:
        os.write(err_w, message.encode(errors="replace")[:4000])
    finally:
        os._exit(code)


def _build_root(prep: Prepared) -> None:
    apply_plan(prep.ops)
    libc.sethostname(prep.hostname)
    # pivot_root(".", ".") stacks the old root under the new one; detaching
    # "." then removes it (pivot_root(2), NOTES) without needing a put_old dir.
    os.chdir(prep.root)
    libc.pivot_root(".", ".")
    libc.umount2(".", libc.MNT_DETACH)
    os.chdir("/")
    libc.mount_setattr("/", libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID, recursive=False)
    loopback_up()


def loopback_up() -> None:
    """Set IFF_UP on `lo` of the current network namespace (netdevice(7))."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = _IFREQ.pack(b"lo", 0)
        flags = _IFREQ.unpack(fcntl.ioctl(sock, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, _IFREQ.pack(b"lo", flags | IFF_UP))


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _find_command(prep: Prepared) -> str:
    found = resolve_command(prep.argv[0], prep.env.get("PATH"), _is_executable)
    if found is None:
        raise CommandNotFound(prep.argv[0])
    return found


def _setup_fds(prep: Prepared) -> None:
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(prep.stdout_w, 1)
    os.dup2(prep.stderr_w, 2)
    low = 3
    for fd in sorted(prep.keep_fds):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)
    # Python ignores SIGPIPE and SIGXFSZ; ignored signals survive exec.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)


def _drop_privileges(prep: Prepared) -> None:
    for cap in prep.caps_to_drop:
        libc.capbset_drop(cap)
    libc.cap_ambient_clear_all()
    if prep.gid or prep.uid:
        os.setgroups([])
        os.setgid(prep.gid)
        os.setuid(prep.uid)  # a non-zero uid loses every capability here
    if prep.uid == 0:
        libc.capset(prep.caps_keep_mask, prep.caps_keep_mask, 0)
    libc.set_no_new_privs()
