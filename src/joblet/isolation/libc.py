"""Thin wrappers over the Linux calls Python 3.11 lacks. The only ctypes user.

Each wrapper raises OSError with the C errno and the call's name, so callers
handle one exception type. Syscall numbers that glibc has no wrapper for are
listed per architecture (x86_64 and aarch64).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal
import struct

# Namespaces, from <linux/sched.h>.
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# Mount flags, from <linux/mount.h>.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

# mount_setattr(2), Linux 5.12+.
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_IDMAP = 0x100000
# open_tree(2) and move_mount(2), Linux 5.2+.
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH = 0x1000
MOVE_MOUNT_F_EMPTY_PATH = 0x4

# prctl(2) options.
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# inotify(7) masks.
IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_IGNORED = 0x00008000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_SYSCALLS = {
    "x86_64": {
        "pivot_root": 155,
        "mount_setattr": 442,
        "open_tree": 428,
        "move_mount": 429,
        "bpf": 321,
    },
    "aarch64": {
        "pivot_root": 41,
        "mount_setattr": 442,
        "open_tree": 428,
        "move_mount": 429,
        "bpf": 280,
    },
}
_NR = _SYSCALLS.get(platform.machine(), _SYSCALLS["x86_64"])

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
_libc.syscall.restype = ctypes.c_long
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class BpfProgram:
    """A compiled seccomp program (an array of struct sock_filter), kept in C
    memory so that installing it after fork is one prctl(2)."""

    def __init__(self, code: bytes) -> None:
        if not code or len(code) % 8:
            raise ValueError("a BPF program is a non-empty array of 8-byte instructions")
        self._buf = ctypes.create_string_buffer(code, len(code))
        self._prog = _SockFprog(len(code) // 8, ctypes.addressof(self._buf))

    @property
    def code(self) -> bytes:
        """The instructions, as given."""
        return self._buf.raw

    def install(self) -> None:
        """Install as this thread's seccomp filter; needs no_new_privs or CAP_SYS_ADMIN."""
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(self._prog))


def _check(result: int, name: str, detail: str = "") -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}", detail or None)
    return result


def bpf(cmd: int, attr: bytes) -> int:
    """bpf(2) with `attr` (a packed union bpf_attr); returns what the call
    returns (a new fd for loads). The kernel may write into `attr`'s copy."""
    buf = ctypes.create_string_buffer(attr, len(attr))
    call = _libc.syscall(
        ctypes.c_long(_NR["bpf"]), ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr))
    )
    return _check(call, "bpf")


def c_buffer(data: bytes) -> tuple[ctypes.Array[ctypes.c_char], int]:
    """`data` in C memory that stays alive with the returned object: (keep, address)."""
    buf = ctypes.create_string_buffer(data, len(data))
    return buf, ctypes.addressof(buf)


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(ctypes.c_long(_NR["pivot_root"]), _b(new_root), _b(put_old)), "pivot_root")


def mount_setattr(target: str, attr_set: int, recursive: bool = True) -> None:
    """Set mount attributes such as MOUNT_ATTR_RDONLY on a mount (and its submounts)."""
    attr = _MountAttr(attr_set, 0, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    call = _libc.syscall(
        ctypes.c_long(_NR["mount_setattr"]),
        ctypes.c_int(AT_FDCWD),
        _b(target),
        ctypes.c_uint(flags),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    _check(call, "mount_setattr", target)


# Prepared calls for the job's init, which runs a whole root plan between
# clone and exec: they take arguments encoded in advance and return the errno
# (0 on success) instead of raising, so the plan's loop stays small.


def mount_raw(
    source: bytes | None, target: bytes, fstype: bytes | None, flags: int, data: bytes | None
) -> int:
    """mount(2); 0 or the errno."""
    return ctypes.get_errno() if _libc.mount(source, target, fstype, flags, data) < 0 else 0


def umount_raw(target: bytes, flags: int) -> int:
    """umount2(2); 0 or the errno."""
    return ctypes.get_errno() if _libc.umount2(target, flags) < 0 else 0


class MountAttrs:
    """The fixed arguments of one mount_setattr(2) call, packed once."""

    def __init__(self, attr_set: int, recursive: bool = True, attr_clr: int = 0) -> None:
        self._attr = _MountAttr(attr_set, attr_clr, 0, 0)
        self.ref = ctypes.byref(self._attr)
        self.flags = ctypes.c_uint(AT_RECURSIVE if recursive else 0)


_NR_MOUNT_SETATTR = ctypes.c_long(_NR["mount_setattr"])
_CWD = ctypes.c_int(AT_FDCWD)
_ATTR_SIZE = ctypes.c_size_t(ctypes.sizeof(_MountAttr))


def mount_setattr_raw(target: bytes, attrs: MountAttrs) -> int:
    """mount_setattr(2) on `target` (relative to the working directory); 0 or the errno."""
    call = _libc.syscall(_NR_MOUNT_SETATTR, _CWD, target, attrs.flags, attrs.ref, _ATTR_SIZE)
    return ctypes.get_errno() if call < 0 else 0


def bind_idmapped_raw(source: bytes, target: bytes, userns_fd: int) -> int:
    """Bind `source` at `target` (relative to the working directory) with its
    ids seen through `userns_fd` (an idmapped mount, mount_setattr(2)); 0 or
    the errno. Needs CAP_SYS_ADMIN in the source file system's user namespace."""
    syscall = _libc.syscall
    fd = syscall(ctypes.c_long(_NR["open_tree"]), _CWD, source,
                 ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC))  # fmt: skip
    if fd < 0:
        return ctypes.get_errno()
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    try:
        call = syscall(_NR_MOUNT_SETATTR, ctypes.c_int(fd), b"", ctypes.c_uint(AT_EMPTY_PATH),
                       ctypes.byref(attr), _ATTR_SIZE)  # fmt: skip
        if call >= 0:
            call = syscall(ctypes.c_long(_NR["move_mount"]), ctypes.c_int(fd), b"", _CWD, target,
                           ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))  # fmt: skip
        return ctypes.get_errno() if call < 0 else 0
    finally:
        os.close(fd)


_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine(), -1)


def clone_process(flags: int) -> int:
    """fork(2) into new namespaces in one step: clone(2) with `flags` and no new
    stack, so the child continues here like after fork, but without Python's
    after-fork hooks. Only for a single-threaded caller whose child never
    returns to the caller's loop (it execs or _exits). Returns 0 in the child."""
    if _SYS_CLONE < 0:
        raise OSError(errno.ENOSYS, f"clone is not wired for {platform.machine()}")
    return _check(_libc.syscall(_SYS_CLONE, flags | signal.SIGCHLD, 0, 0, 0, 0), "clone")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_dumpable(dumpable: bool) -> None:
    prctl(PR_SET_DUMPABLE, int(dumpable))


def set_keepcaps(keep: bool) -> None:
    prctl(PR_SET_KEEPCAPS, int(keep))


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_pdeathsig(signum: int) -> None:
    prctl(PR_SET_PDEATHSIG, signum)


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap)


def capbset_drop_all(caps: tuple[int, ...]) -> None:
    """Drop each of `caps` from the bounding set (one prctl per capability)."""
    drop = _libc.prctl
    for cap in caps:
        if drop(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0:
            _check(-1, "prctl", f"PR_CAPBSET_DROP {cap}")


def cap_ambient_clear_all() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def capget(pid: int = 0) -> tuple[int, int, int]:
    """Return (effective, permitted, inheritable) as 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    return (
        data[0].effective | data[1].effective << 32,
        data[0].permitted | data[1].permitted << 32,
        data[0].inheritable | data[1].inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets from 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")


_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len


def parse_inotify_events(buf: bytes) -> list[tuple[int, int, str]]:
    """Split a read(2) of an inotify fd into (wd, mask, name) tuples."""
    events: list[tuple[int, int, str]] = []
    pos = 0
    while pos + _EVENT.size <= len(buf):
        wd, mask, _cookie, length = _EVENT.unpack_from(buf, pos)
        start = pos + _EVENT.size
        name = buf[start : start + length].rstrip(b"\0")
        events.append((wd, mask, os.fsdecode(name)))
        pos = start + length
    return events


class Inotify:
    """A non-blocking inotify instance; register fileno() with a selector or loop."""

    def __init__(self) -> None:
        self._fd = _check(_libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")

    def fileno(self) -> int:
        return self._fd

    def add_watch(self, path: str, mask: int) -> int:
        return _check(_libc.inotify_add_watch(self._fd, _b(path), mask), "inotify_add_watch", path)

    def rm_watch(self, wd: int) -> None:
        _check(_libc.inotify_rm_watch(self._fd, wd), "inotify_rm_watch")

    def read_events(self) -> list[tuple[int, int, str]]:
        """Every queued event; an empty list when none is pending."""
        try:
            return parse_inotify_events(os.read(self._fd, 64 * 1024))
        except BlockingIOError:
            return []

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Inotify:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def malloc_trim() -> bool:
    """Give the C heap's free pages back to the kernel (glibc's malloc_trim(3));
    False where the C library has none."""
    trim = getattr(_libc, "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


M_ARENA_MAX = -8  # <malloc.h>


def limit_malloc_arenas(count: int) -> bool:
    """At most `count` malloc arenas (mallopt(3) M_ARENA_MAX, as the
    MALLOC_ARENA_MAX variable would, but for a process already started):
    each thread's own arena keeps freed pages a trim does not give back.
    False where the C library has no mallopt."""
    mallopt = getattr(_libc, "mallopt", None)
    return bool(mallopt(M_ARENA_MAX, count)) if mallopt is not None else False
