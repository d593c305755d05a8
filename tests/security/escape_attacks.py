"""The attacks test_escape_classes.py runs inside a real job (python3 -c).

Each attack prints one JSON line, {"attack": name, ...}: "result" is "ok",
the errno's name, or "signal:SIGSYS" for one run in a child that the kernel
killed. Every attack is written so that, should it succeed, it changes
nothing that matters: the same value written back, a remount with the flags
already there, a read-only open of a disk, bad magic for reboot(2), a module
name that does not exist. Numbers are x86_64's (<asm/unistd_64.h>).

argv[1] is a JSON object of hints from the test: a host path that must stay
out of sight, a marker in the cmdline of another job.
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import signal
import socket
import struct
import sys
from collections.abc import Callable

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
HINTS: dict[str, str] = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}

NR = {
    "ptrace": 101, "syslog": 103, "iopl": 172, "ioperm": 173, "pivot_root": 155,
    "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166, "swapon": 167,
    "swapoff": 168, "reboot": 169, "init_module": 175, "delete_module": 176,
    "quotactl": 179, "lookup_dcookie": 212, "clock_settime": 227, "kexec_load": 246,
    "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272,
    "perf_event_open": 298, "name_to_handle_at": 303, "open_by_handle_at": 304,
    "setns": 308, "process_vm_readv": 310, "finit_module": 313, "bpf": 321,
    "userfaultfd": 323, "kexec_file_load": 320, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "mount_setattr": 442, "vhangup": 153, "clone": 56, "getpid": 39,
}  # fmt: skip
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND = 32, 4096
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
X32_SYSCALL_BIT = 0x40000000


def report(attack: str, **fields: object) -> None:
    print(json.dumps({"attack": attack, **fields}), flush=True)


def name_of(err: int) -> str:
    return errno.errorcode.get(err, str(err))


def arg(value: object) -> object:
    if isinstance(value, int):
        return ctypes.c_long(value)
    return value


def syscall(name: str, *args: object) -> str:
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(NR[name]), *(arg(a) for a in args))
    return "ok" if result >= 0 else name_of(ctypes.get_errno())


def attempt(call: Callable[[], object]) -> str:
    try:
        call()
    except OSError as exc:
        return name_of(exc.errno or 0)
    return "ok"


def in_child(call: Callable[[], str]) -> str:
    """`call` in a forked child: what it returned, or the signal that killed it
    (a seccomp kill, a fault). The child cannot change this process."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            os.write(write_end, call().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "signal:" + signal.Signals(os.WTERMSIG(status)).name
    return out


def cstr(text: str) -> bytes:
    return text.encode()


# --- mounts, the root, file handles -------------------------------------------------


def mount_attacks() -> None:
    remount_rw = MS_REMOUNT | MS_BIND  # read-only flag cleared: a write would follow
    report("remount_root_rw", result=syscall("mount", None, cstr("/"), None, remount_rw, None))
    report("remount_usr_rw", result=syscall("mount", None, cstr("/usr"), None, remount_rw, None))
    # Fresh ones, without the job's masks; binfmt_misc's register file names
    # an interpreter the kernel runs as host root; debugfs shows the kernel.
    for fstype in ("proc", "sysfs", "cgroup2", "binfmt_misc", "debugfs"):
        report(f"mount_{fstype}", result=new_mount(fstype))
    # cgroup v1: a hierarchy of its own, whose release_agent runs as host root
    report("mount_cgroup_v1", result=new_mount("cgroup", "none,name=joblet-escape"))
    masks = [f"/proc/{name}" for name in ("kcore", "keys", "timer_list", "sched_debug")]
    mask = next(path for path in masks if os.path.exists(path))
    report("umount_proc_mask", path=mask, result=syscall("umount2", cstr(mask), 2))  # MNT_DETACH
    report("pivot_root", result=syscall("pivot_root", cstr("/tmp"), cstr("/tmp")))
    report("fsopen_proc", result=syscall("fsopen", cstr("proc"), 0))
    open_tree_clone = 1
    report("open_tree_clone", result=syscall("open_tree", -100, cstr("/proc"), open_tree_clone))
    attr = struct.pack("=QQQQ", 0, MS_RDONLY, 0, 0)  # clear MOUNT_ATTR_RDONLY
    report("mount_setattr_rw", result=syscall("mount_setattr", -100, cstr("/"), 0, attr, len(attr)))
    if os.path.exists("/proc/kcore"):  # absent without CONFIG_PROC_KCORE
        with open("/proc/kcore", "rb") as f:
            report("kcore_read", size=len(f.read(4096)))


def new_mount(fstype: str, options: str = "") -> str:
    return syscall("mount", cstr(fstype), cstr("/tmp"), cstr(fstype), 0, cstr(options) or None)


def chroot_escape() -> None:
    """The classic: chroot into a subdirectory while holding a descriptor of
    the root, climb out of it with "..", chroot to where the climb ended."""

    def escape() -> str:
        os.makedirs("/tmp/jail", exist_ok=True)
        outside = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        os.chroot("/tmp/jail")
        os.fchdir(outside)
        for _ in range(64):
            os.chdir("..")
        os.chroot(".")
        return json.dumps({
            "chroot": "ok",
            "host_path_seen": os.path.exists(HINTS["host_path"]),
            "work_seen": os.path.isdir("/work"),
        })  # fmt: skip

    def guarded() -> str:
        try:
            return escape()
        except OSError as exc:
            return json.dumps({"chroot": name_of(exc.errno or 0)})

    report("chroot_escape", **json.loads(in_child(guarded)))


def file_handles() -> None:
    """Shocker (2014): open_by_handle_at with a forged handle of inode 2, the
    root directory of most file systems, opens it from anywhere on that file
    system, outside any bind mount or chroot. The handle is opened read-only."""
    handle = struct.pack("=Ii", 8, 1) + struct.pack("=II", 2, 0)  # FILEID_INO32_GEN
    buf = ctypes.create_string_buffer(handle, len(handle))
    mount_fd = os.open("/usr", os.O_RDONLY | os.O_DIRECTORY)
    report("open_by_handle_at", result=syscall("open_by_handle_at", mount_fd, buf, os.O_RDONLY))
    out = ctypes.create_string_buffer(struct.pack("=Ii", 128, 0), 8 + 128)
    mount_id = ctypes.c_int()
    report(
        "name_to_handle_at",
        result=syscall("name_to_handle_at", -100, cstr("/usr"), out, ctypes.byref(mount_id), 0),
    )
    os.close(mount_fd)


# --- cgroups, /sys, /proc/sys ---------------------------------------------------------


def write_back(path: str) -> str:
    """Open for writing and write the value already there."""

    def call() -> None:
        with open(path, "rb") as f:
            value = f.read()
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, value or b"\n")
        finally:
            os.close(fd)

    return attempt(call)


def kernel_files() -> None:
    for path in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
                 "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/hostname"):  # fmt: skip
        if os.path.exists(path):
            report("procsys_write", path=path, result=write_back(path))
    # Only opened: a write to binfmt_misc's register would be one for the host.
    binfmt = "/proc/sys/fs/binfmt_misc/register"
    report("binfmt_register_open", result=attempt(lambda: os.close(os.open(binfmt, os.O_WRONLY))))
    report("proc_kmsg_read", result=attempt(lambda: os.close(os.open("/proc/kmsg", os.O_RDONLY))))
    report(
        "sysrq_trigger_open",
        result=attempt(lambda: os.close(os.open("/proc/sysrq-trigger", os.O_WRONLY))),
    )
    for path in ("/sys/kernel/uevent_helper", "/sys/class/net/lo/mtu", "/sys/fs/cgroup"):
        report("sys_path", path=path, exists=os.path.exists(path))
    with open("/proc/self/cgroup") as f:
        report("own_cgroups", paths=sorted({line.rstrip("\n").split(":", 2)[2] for line in f}))
    with open("/proc/self/mountinfo") as f:
        types = sorted({line.split(" - ", 1)[1].split()[0] for line in f})
    report("mount_types", types=types)


def proc_entries() -> None:
    """chmod and chown of each kernel-wide /proc entry to the mode and owner
    it has: they change the kernel's one proc_dir_entry, which every /proc
    mounted later shows (the host's too)."""
    for name in sorted(os.listdir("/proc")):
        path = f"/proc/{name}"
        if name.isdigit() or os.path.islink(path):
            continue  # a process of the job's own, self, thread-self, mounts, net
        st = os.lstat(path)
        report("proc_entry", name=name,
               chmod=attempt(lambda p=path, m=st.st_mode: os.chmod(p, m & 0o7777)),
               chown=attempt(lambda p=path, s=st: os.chown(p, s.st_uid, s.st_gid)))  # fmt: skip


# --- devices --------------------------------------------------------------------------


def devices() -> None:
    disk = os.stat("/usr").st_dev  # the host's disk under the read-only binds
    nodes = {"disk": (0o060600, disk), "mem": (0o020600, os.makedev(1, 1)),
             "kmsg": (0o020600, os.makedev(1, 11))}  # fmt: skip
    for name in ("mem", "kmsg", "kcore"):
        report("dev_present", name=name, exists=os.path.exists(f"/dev/{name}"))
    for directory in ("/tmp", "/dev", "/dev/shm", "/work"):
        for name, (mode, dev) in nodes.items():
            path = f"{directory}/escape-{name}"
            made = attempt(lambda p=path, m=mode, d=dev: os.mknod(p, m, d))
            opened = attempt(lambda p=path: os.close(os.open(p, os.O_RDONLY | os.O_NONBLOCK)))
            report("mknod_open", dir=directory, node=name, mknod=made, open=opened)
            if made == "ok":
                os.unlink(path)


# --- namespaces and other processes ---------------------------------------------------


def namespaces() -> None:
    report("unshare_user", result=in_child(lambda: syscall("unshare", CLONE_NEWUSER)))
    report("unshare_mount", result=in_child(lambda: syscall("unshare", CLONE_NEWNS)))
    report("clone_newuser", result=in_child(clone_newuser))
    for ns in ("mnt", "net", "pid", "user", "cgroup"):
        for pid in ("1", "self"):
            fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)
            report("setns", ns=ns, pid=pid, result=in_child(lambda fd=fd: syscall("setns", fd, 0)))
            os.close(fd)
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    cmdlines = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdlines.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    # Given reversed: this job's own argv (and its init's) hold the hint.
    marker = HINTS.get("other_job_marker_reversed", "")[::-1]
    hint = HINTS.get("other_job_marker_reversed", "")
    report("processes", pids=sorted(map(int, pids)),
           other_job_seen=bool(marker) and any(marker in c for c in cmdlines),
           own_hint_seen=bool(hint) and any(hint in c for c in cmdlines))  # fmt: skip
    with open("/proc/1/comm") as f:
        report("init_comm", comm=f.read().strip())
    report("ptrace_init", result=in_child(lambda: ptrace_attach(1)))
    local = ctypes.create_string_buffer(16)
    iov_local = struct.pack("=QQ", ctypes.addressof(local), 16)
    iov_remote = struct.pack("=QQ", 0x400000, 16)
    report(
        "process_vm_readv", result=syscall("process_vm_readv", 1, iov_local, 1, iov_remote, 1, 0)
    )


def clone_newuser() -> str:
    """clone(2) with CLONE_NEWUSER: a child that exits at once, or an error."""
    ctypes.set_errno(0)
    pid = libc.syscall(ctypes.c_long(NR["clone"]), ctypes.c_long(CLONE_NEWUSER | signal.SIGCHLD),
                       None, None, None, None)  # fmt: skip
    if pid == 0:
        os._exit(0)
    if pid < 0:
        return name_of(ctypes.get_errno())
    os.waitpid(pid, 0)
    return "ok"


def ptrace_attach(pid: int) -> str:
    result = syscall("ptrace", 16, pid, 0, 0)  # PTRACE_ATTACH
    if result == "ok":
        syscall("ptrace", 17, pid, 0, 0)  # PTRACE_DETACH: let it run on
    return result


# --- kernel interfaces behind capabilities and the filter -----------------------------


def kernel_calls() -> None:
    session_keyring = -3
    keyring_id = 0  # KEYCTL_GET_KEYRING_ID
    report("keyctl", result=syscall("keyctl", keyring_id, session_keyring, 0))
    report(
        "request_key",
        result=syscall("request_key", cstr("user"), cstr("joblet-escape"), None, session_keyring),
    )
    report("add_key", result=add_key(session_keyring))
    attr = struct.pack("=IIIII", 2, 4, 4, 1, 0) + bytes(100)  # BPF_MAP_TYPE_ARRAY, 1 entry
    report("bpf_map_create", result=syscall("bpf", 0, attr, len(attr)))
    perf = struct.pack("=IIQ", 1, 128, 0) + bytes(104)  # PERF_TYPE_SOFTWARE, CPU_CLOCK
    report("perf_event_open", result=syscall("perf_event_open", perf, 0, -1, -1, 0))
    report("userfaultfd", result=syscall("userfaultfd", 0))
    report("init_module", result=syscall("init_module", None, 0, cstr("")))
    report("finit_module", result=syscall("finit_module", -1, cstr(""), 0))
    report("delete_module", result=syscall("delete_module", cstr("joblet_no_such_module"), 0o4000))
    report("kexec_load", result=syscall("kexec_load", 0, 0, None, 0x00FF0000))  # no such arch
    report("kexec_file_load", result=syscall("kexec_file_load", -1, -1, 0, None, 0))
    report("reboot", result=syscall("reboot", 0, 0, 0xCDEF89AB, None))  # bad magic, CAD_ON
    report("swapon", result=syscall("swapon", cstr("/nonexistent-joblet-swap"), 0))
    report("swapoff", result=syscall("swapoff", cstr("/nonexistent-joblet-swap")))
    report("settimeofday", result=syscall("settimeofday", None, None))
    bad_time = struct.pack("=qq", 0, -1)  # tv_nsec out of range
    report("clock_settime", result=syscall("clock_settime", 0, bad_time))
    report("acct", result=syscall("acct", cstr("/nonexistent-joblet-acct")))
    q_quotaon = (0x800002 << 8) | 0  # QCMD(Q_QUOTAON, USRQUOTA)
    report(
        "quotactl",
        result=syscall(
            "quotactl", q_quotaon, cstr("/nonexistent-joblet-dev"), 0, cstr("/nonexistent")
        ),
    )
    report("lookup_dcookie", result=syscall("lookup_dcookie", 0, None, 0))
    report("iopl", result=in_child(lambda: syscall("iopl", 3)))
    report("ioperm", result=in_child(lambda: syscall("ioperm", 0x80, 1, 1)))
    buf = ctypes.create_string_buffer(4096)
    report("syslog_read_all", result=syscall("syslog", 3, buf, 4096))
    report("vhangup", result=in_child(lambda: syscall("vhangup")))
    report("tiocsti_stdin", result=attempt(lambda: ioctl_sti(0)))
    report("open_tty", result=attempt(lambda: os.close(os.open("/dev/tty", os.O_RDWR))))


def add_key(keyring: int) -> str:
    """A key in a keyring the job might share with the host's root (the
    session keyring falls back to uid 0's user session keyring): invalidated
    at once should it be made."""
    ctypes.set_errno(0)
    args = (
        cstr("user"),
        cstr("joblet-escape"),
        cstr("x"),
        ctypes.c_long(1),
        ctypes.c_long(keyring),
    )
    key = libc.syscall(ctypes.c_long(NR["add_key"]), *args)
    if key < 0:
        return name_of(ctypes.get_errno())
    syscall("keyctl", 21, key)  # KEYCTL_INVALIDATE
    return "ok"


def ioctl_sti(fd: int) -> None:
    import fcntl
    import termios

    fcntl.ioctl(fd, termios.TIOCSTI, b"x")


# --- sockets ---------------------------------------------------------------------------


def sockets() -> None:
    kinds = {
        "inet_raw_icmp": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        "inet_raw_tcp": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP),
        "inet6_raw": (socket.AF_INET6, socket.SOCK_RAW, 58),
        "packet_raw": (socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003)),
        "packet_dgram": (socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0003)),
        "ping_dgram": (socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP),
    }
    for name, triple in kinds.items():
        report("socket", kind=name, result=attempt(lambda t=triple: socket.socket(*t).close()))
    if "host_abstract_socket" in HINTS:  # a listener in the host's network namespace
        address = "\0" + HINTS["host_abstract_socket"]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
            report("host_abstract_socket", result=attempt(lambda: unix.connect(address)))


# --- what the job inherited ------------------------------------------------------------


def inherited() -> None:
    """The descriptors and environment of the job's command and of its init."""
    for pid in ("self", "1"):
        directory = f"/proc/{pid}/fd"
        links = {name: attempt_readlink(f"{directory}/{name}") for name in os.listdir(directory)}
        # The descriptor listdir used is closed by now: its link is gone.
        report("fds", pid=pid, fds={k: v for k, v in links.items() if v != "ENOENT"})
    secret = HINTS.get("secret", "\0")
    for pid in ("self", "1"):
        with open(f"/proc/{pid}/environ", "rb") as f:
            items = [item.decode(errors="replace") for item in f.read().split(b"\0") if item]
        names = sorted(item.split("=", 1)[0] for item in items)
        report("environ", pid=pid, names=names, secret_seen=any(secret in i for i in items))


def attempt_readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError as exc:
        return name_of(exc.errno or 0)


# --- foreign system call ABIs -----------------------------------------------------------


def int80(number: int, a1: int = 0, a2: int = 0, a3: int = 0) -> str:
    """A 32-bit system call through `int $0x80` from 64-bit code: the kernel
    takes it as i386's (AUDIT_ARCH_I386 for seccomp). Returns "ok" or the
    errno's name (the result comes back in eax)."""
    code = b"".join((
        b"\x53",  # push rbx
        b"\xb8" + struct.pack("<I", number),  # mov eax, number
        b"\xbb" + struct.pack("<I", a1 & 0xFFFFFFFF),  # mov ebx, a1
        b"\xb9" + struct.pack("<I", a2 & 0xFFFFFFFF),  # mov ecx, a2
        b"\xba" + struct.pack("<I", a3 & 0xFFFFFFFF),  # mov edx, a3
        b"\xcd\x80",  # int 0x80
        b"\x48\x63\xc0",  # movsxd rax, eax
        b"\x5b",  # pop rbx
        b"\xc3",  # ret
    ))  # fmt: skip
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    result = ctypes.CFUNCTYPE(ctypes.c_long)(address)()
    return "ok" if result >= 0 else name_of(-result)


def foreign_abis() -> None:
    i386 = {"getpid": (20, 0, 0, 0), "unshare_user": (310, CLONE_NEWUSER, 0, 0),
            "mount": (21, 0, 0, 0), "keyctl": (288, 0, -3, 0), "setns": (346, 0, 0, 0),
            "reboot": (88, 0, 0, 0xCDEF89AB)}  # fmt: skip
    for name, call in i386.items():
        report("i386", call=name, result=in_child(lambda c=call: int80(*c)))
    x32 = {"getpid": 39, "unshare_user": 272}
    for name, number in x32.items():
        args = (CLONE_NEWUSER,) if name == "unshare_user" else ()
        report(
            "x32",
            call=name,
            result=in_child(lambda n=number, a=args: syscall_number(n | X32_SYSCALL_BIT, *a)),
        )


def syscall_number(number: int, *args: int) -> str:
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    return "ok" if result >= 0 else name_of(ctypes.get_errno())


SECTIONS = {
    "mounts": (mount_attacks, chroot_escape, file_handles),
    "kernel_files": (kernel_files, proc_entries),
    "devices": (devices,),
    "namespaces": (namespaces,),
    "kernel_calls": (kernel_calls,),
    "sockets": (sockets,),
    "inherited": (inherited,),
    "abis": (foreign_abis,),
}

if __name__ == "__main__":
    for section in HINTS.get("sections", ",".join(SECTIONS)).split(","):
        for run in SECTIONS[section]:
            run()
