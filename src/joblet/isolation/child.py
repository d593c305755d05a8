"""What runs between clone and exec: the job's init before it becomes tini.

The launcher clones the init straight into its new pid, mount, uts, ipc and
network namespaces (one process: no forker in between; the launcher, a child
subreaper, reaps it). The init first builds the part of the root every job
with the same allowed mounts shares, then waits for its job (`JobOrder`) on a
control socket, so that a launcher can keep one such "spare" init ready and a
launch only does the job's own part: join the job's cgroups, take a cgroup
namespace rooted there, wire the network, finish the root, pivot into it,
harden itself and exec tini, which runs the user's command. The init only
makes system calls and never returns: it execs or `_exit`s.

A setup failure is written to `err_w` (close-on-exec); an exec that succeeds
closes it empty. A spare whose control socket closes without a job exits.
"""

from __future__ import annotations

import fcntl
import gc
import marshal
import os
import resource
import signal
import socket
import struct
from dataclasses import dataclass
from typing import Any, NoReturn

from joblet.isolation import libc, mountprog, userns
from joblet.isolation.paths import resolve_command
from joblet.network import jobside

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = struct.Struct("16sH14x")
TINI_ARGS = ("tini", "-g", "--")
MAX_ORDER = 16 << 20
_LENGTH = struct.Struct("!I")


class CommandNotFound(Exception):
    pass


class NotExecutable(Exception):
    """The command exists but may not be run (no execute permission): 126, as in sh."""


@dataclass
class Prepared:
    """What an init is cloned with, computed by the launcher: the host's facts,
    the shared part of the root, and the pipes of its job."""

    root: str
    base_program: mountprog.Program
    unshare_flags: int
    caps_to_drop: tuple[int, ...]
    caps_keep_mask: int
    seccomp_program: libc.BpfProgram
    tini_fd: int
    stdout_w: int
    stderr_w: int
    err_w: int
    ctl_fd: int  # the init's end of its control socket
    host_netns_fd: int = -1  # the launcher's network namespace
    host_sock: Any = None  # a netlink socket in the launcher's namespace (veth jobs)
    userns_fd: int = -1  # the user namespace the job enters (see userns); -1: none

    def inherited_fds(self) -> list[int]:
        fds = [self.stdout_w, self.stderr_w, self.err_w, self.ctl_fd, self.tini_fd]
        fds.append(self.host_netns_fd)
        fds.append(self.userns_fd)
        if self.host_sock is not None:
            fds.append(self.host_sock.fileno())
        return [fd for fd in fds if fd >= 0]


@dataclass(frozen=True)
class JobOrder:
    """Everything that is a job's own, for its init: plain data, sent with marshal."""

    job_id: str
    steps: mountprog.Program  # the root's job part (compile_job_part)
    hostname: str
    argv: tuple[str, ...]
    env: dict[str, str]
    workdir: str
    cgroup_procs: tuple[str, ...]
    uid: int
    gid: int
    network: dict[str, Any]  # LaunchSpec.network
    nofile: tuple[int, int] = (0, 0)  # RLIMIT_NOFILE (soft, hard); 0 = inherited
    stdin_path: str = ""  # LaunchSpec.stdin_path
    writable_root: bool = False  # a runtime build: its root tmpfs stays writable

    def encode(self) -> bytes:
        fields = (self.job_id, self.steps, self.hostname, self.argv, self.env, self.workdir)
        ids = (self.uid, self.gid)
        rest = (self.network, self.nofile, self.stdin_path, self.writable_root)
        return marshal.dumps((*fields, self.cgroup_procs, *ids, *rest))

    @classmethod
    def decode(cls, data: bytes) -> JobOrder:
        return cls(*marshal.loads(data))


def run_init(prep: Prepared) -> NoReturn:
    """The cloned init: the shared part of the root, then its job."""
    gc.disable()
    # The launcher's wakeup fd is closed below and its number may be reused.
    signal.set_wakeup_fd(-1)
    try:
        _close_inherited(prep.inherited_fds())
        os.setsid()
        mountprog.run(prep.base_program, os.fsencode(prep.root))  # ends inside the root
        loopback_up()
        if prep.userns_fd >= 0 and prep.unshare_flags & libc.CLONE_NEWNET:
            # The job's root holds no capability over its network namespace
            # (the host's user namespace owns it): ports below 1024 open to all.
            _write_sysctl("net/ipv4/ip_unprivileged_port_start", "0")
    except BaseException as exc:
        _fail(prep.err_w, f"job setup: {exc}", 126)
    run_job(prep, _receive(prep.ctl_fd))


def _close_inherited(keep: list[int]) -> None:
    """Close what the launcher had open (its sockets, other jobs' pipes and
    spares' control sockets): a spare must not keep any of them alive."""
    low = 3
    for fd in sorted(set(keep)):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 1 << 20)


def _receive(ctl_fd: int) -> JobOrder:
    """The job, framed as a 4-byte length and the order."""
    data = b""
    try:
        data = _read_exactly(ctl_fd, _LENGTH.unpack(_read_exactly(ctl_fd, _LENGTH.size))[0])
    except (OSError, EOFError, struct.error):
        os._exit(0)  # dropped by the launcher, or the launcher is gone
    finally:
        os.close(ctl_fd)
    return JobOrder.decode(data)


def _read_exactly(fd: int, size: int) -> bytes:
    if size > MAX_ORDER:
        raise EOFError("order too large")
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            raise EOFError("control socket closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def frame_order(order: JobOrder) -> bytes:
    data = order.encode()
    return _LENGTH.pack(len(data)) + data


def run_job(prep: Prepared, order: JobOrder) -> NoReturn:
    try:
        for procs in order.cgroup_procs:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")  # "0": the writer itself (see prepare.attach_file)
            finally:
                os.close(fd)
        if prep.unshare_flags & libc.CLONE_NEWCGROUP:
            libc.unshare(libc.CLONE_NEWCGROUP)
        if prep.host_sock is not None:
            with prep.host_sock:
                jobside.setup(order.network, prep.host_netns_fd, prep.host_sock)
    except BaseException as exc:
        _fail(prep.err_w, f"launch: {exc}", 126)
    try:
        # Opened while host paths are still in reach (before pivot_root).
        stdin_fd = _open_stdin(order.stdin_path)
        _finish_root(prep, order)
        # Relative commands ("./run.sh") are looked up from the working directory.
        os.chdir(order.workdir)
        command = _find_command(order)
        _set_limits(order)
        if prep.userns_fd >= 0:
            userns.enter(prep.userns_fd)
        _setup_fds(prep, stdin_fd)
        _drop_privileges(prep, order)
        prep.seccomp_program.install()
        os.execve(prep.tini_fd, [*TINI_ARGS, command, *order.argv[1:]], order.env)
    except CommandNotFound as exc:
        _fail(prep.err_w, f"command not found: {exc}", 127)
    except NotExecutable as exc:
        _fail(prep.err_w, f"not executable: {exc}", 126)
    except BaseException as exc:
        _fail(prep.err_w, f"job setup: {exc}", 126)


def _fail(err_w: int, message: str, code: int) -> NoReturn:
    try:
        os.write(err_w, message.encode(errors="replace")[:4000])
    finally:
        os._exit(code)


def _finish_root(prep: Prepared, order: JobOrder) -> None:
    mountprog.run(order.steps, os.fsencode(prep.root), prep.userns_fd)  # relative to the root
    libc.sethostname(order.hostname)
    # pivot_root(".", ".") stacks the old root under the new one; detaching
    # "." then removes it (pivot_root(2), NOTES) without needing a put_old dir.
    libc.pivot_root(".", ".")
    libc.umount2(".", libc.MNT_DETACH)
    os.chdir("/")
    root_attrs = libc.MOUNT_ATTR_NOSUID | (0 if order.writable_root else libc.MOUNT_ATTR_RDONLY)
    libc.mount_setattr("/", root_attrs, recursive=False)


def loopback_up() -> None:
    """Set IFF_UP on `lo` of the current network namespace (netdevice(7))."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = _IFREQ.pack(b"lo", 0)
        flags = _IFREQ.unpack(fcntl.ioctl(sock, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, _IFREQ.pack(b"lo", flags | IFF_UP))


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _find_command(order: JobOrder) -> str:
    found = resolve_command(order.argv[0], order.env.get("PATH"), _is_executable)
    if found is not None:
        return found
    present = resolve_command(order.argv[0], order.env.get("PATH"), os.path.isfile)
    if present is not None:
        raise NotExecutable(present)
    raise CommandNotFound(order.argv[0])


def _open_stdin(path: str) -> int:
    """The job's fd 0: the daemon's FIFO when it asked for one, else -1 (/dev/null).
    The daemon holds the FIFO open for writing already, so this never blocks."""
    if not path:
        return -1
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    os.set_blocking(fd, True)
    return fd


def _setup_fds(prep: Prepared, stdin_fd: int = -1) -> None:
    os.dup2(stdin_fd if stdin_fd >= 0 else os.open("/dev/null", os.O_RDONLY), 0)
    os.dup2(prep.stdout_w, 1)
    os.dup2(prep.stderr_w, 2)
    _close_inherited([prep.err_w, prep.tini_fd])
    # Python ignores SIGPIPE and SIGXFSZ; ignored signals survive exec. tini
    # ignoring SIGTTOU tells the launcher that it is ready for signals
    # (pending.init_takes), so none of the launcher's may be inherited.
    for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(signum, signal.SIG_DFL)


# POSIX message queue bytes count per real uid, checked against the
# creator's RLIMIT_MSGQUEUE (mq_overview(7)): a job of root's with the usual
# 800 KiB could take all of root's, and the host's root then gets EMFILE from
# mq_open. At a quarter, all jobs together leave root three quarters.
JOB_MSGQUEUE_BYTES = 819200 // 4


def _limit_message_queues() -> None:
    hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)[1]
    limit = JOB_MSGQUEUE_BYTES if hard == resource.RLIM_INFINITY else min(JOB_MSGQUEUE_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (limit, limit))


def _write_sysctl(name: str, value: str) -> None:
    with open(f"/proc/sys/{name}", "w") as f:
        f.write(value)


def _set_limits(order: JobOrder) -> None:
    if order.nofile[1]:
        # Set while host root (raising a hard limit takes CAP_SYS_RESOURCE in
        # the host's user namespace); the job cannot raise it again.
        resource.setrlimit(resource.RLIMIT_NOFILE, order.nofile)
    _limit_message_queues()


def _drop_privileges(prep: Prepared, order: JobOrder) -> None:
    libc.capbset_drop_all(prep.caps_to_drop)
    libc.cap_ambient_clear_all()
    if order.gid or order.uid:
        if prep.userns_fd < 0:  # in the user namespace: cleared before entering it
            os.setgroups([])
        os.setgid(order.gid)
        os.setuid(order.uid)  # a non-zero uid loses every capability here
    if order.uid == 0:
        libc.capset(prep.caps_keep_mask, prep.caps_keep_mask, 0)
    libc.set_no_new_privs()
