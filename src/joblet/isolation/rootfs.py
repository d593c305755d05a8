"""The job's root filesystem as a plan of mount operations.

`plan_root` is pure: the launcher computes the plan before it forks, so the
job process only executes it (`apply_plan`). Every target lies lexically under
the new root, and the executor refuses to create or mount through a symlink:
the root is a fresh tmpfs only this process can write, so a checked path
cannot change under it.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from joblet.isolation import libc
from joblet.isolation.paths import UnsafePath, components, join_under

if TYPE_CHECKING:
    from joblet.isolation.driver_binds import DriverBinds
    from joblet.isolation.driver_proc import DriverProc
    from joblet.isolation.runtime_root import BuildRoot, RuntimeRoot

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (
    ("pts/ptmx", "ptmx"),
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
)
# runc's masked files, and the kernel heap's layout (slabinfo, vmallocinfo),
# which helps an exploit find its target.
MASKED_PROC_FILES = (
    "kcore",
    "keys",
    "timer_list",
    "timer_stats",
    "latency_stats",
    "sched_debug",
    "slabinfo",
    "vmallocinfo",
)
# Read-only binds of themselves: a write fails with EROFS instead of vanishing
# into a /dev/null mask (sysrq-trigger must refuse, not pretend).
READONLY_PROC_PATHS = ("sysrq-trigger", "sys", "bus", "fs", "irq")
# /proc entries that are the kernel's, not a process's: each is one
# proc_dir_entry shared by every proc instance, and its owner (root, which a
# job is) may chmod or chown it (proc_notify_change): a job's
# `chmod 0 /proc/meminfo` would reach every /proc mounted afterwards, the
# host's included. Read-only binds of themselves make such changes EROFS;
# reading works as before. Opening /proc/pressure/* for writing (a PSI
# trigger on the whole host's pressure) is refused with them. The names are
# those of Linux 6.x and common drivers (absent ones are skipped); the
# escape tests list /proc in a job and flag any entry a kernel adds.
PROC_KERNEL_ENTRIES = (
    "acpi", "allocinfo", "asound", "bootconfig", "buddyinfo", "cgroups", "cmdline",
    "config.gz", "consoles", "cpuinfo", "crypto", "devices", "diskstats", "dma", "driver",
    "dynamic_debug", "execdomains", "fb", "filesystems", "interrupts", "iomem", "ioports",
    "ipmi", "kallsyms", "key-users", "kmsg", "kpagecgroup", "kpagecount", "kpageflags",
    "loadavg", "lock_stat", "lockdep", "lockdep_chains", "lockdep_stats", "locks", "mdstat",
    "meminfo", "misc", "modules", "mpt", "mtrr", "pagetypeinfo", "partitions", "pressure",
    "program_cpu", "schedstat", "scsi", "softirqs", "stat", "swaps", "sysvipc", "tty",
    "uptime", "version", "version_signature", "vmcore", "vmstat", "zoneinfo",
)  # fmt: skip
GENERATED_ETC = ("hostname", "hosts", "resolv.conf")
_GENERATED_PATHS = frozenset("/etc/" + name for name in GENERATED_ETC)
VOLUMES_DIR = "volumes"  # volumes are mounted at /volumes/NAME
ROOT_TMPFS = "mode=0755,size=1m"
RO_ATTRS = libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV
# The device nodes and /proc masks are binds of the host's own inodes (devtmpfs):
# read-only binds, so chmod, chown, utime and setxattr fail with EROFS instead
# of changing the host's /dev/null. Reading and writing the device still work:
# opening a device node for writing is no write to its file system.
DEVICE_ATTRS = libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NOEXEC


class Kind(Enum):
    DIR = "dir"
    FILE = "file"
    SYMLINK = "symlink"
    MISSING = "missing"


@dataclass(frozen=True)
class HostEntry:
    kind: Kind
    link: str = ""  # the symlink's text when kind is SYMLINK


@dataclass(frozen=True)
class MakeDir:
    path: str


@dataclass(frozen=True)
class MakeFile:
    path: str


@dataclass(frozen=True)
class MakeSymlink:
    link: str
    path: str


@dataclass(frozen=True)
class Mount:
    source: str | None
    target: str
    fstype: str | None
    flags: int
    data: str | None = None
    optional: bool = False  # skip when the target does not exist (kernel-dependent /proc files)
    # A bind whose ids are seen through the jobs' user namespace (isolation.userns).
    idmapped: bool = False


@dataclass(frozen=True)
class Protect:
    """Set mount attributes (read-only, nosuid...) on a mount and its submounts."""

    target: str
    attrs: int
    optional: bool = False
    clear: int = 0  # attributes to clear (mount_setattr's attr_clr)
    recursive: bool = True


@dataclass(frozen=True)
class ProcEntries:
    """Bind the kernel's entries of the fresh /proc at `proc` that exist (see
    procmask): `readonly` onto themselves read-only, `masked` to /dev/null."""

    proc: str
    readonly: tuple[str, ...]
    masked: tuple[str, ...]


@dataclass(frozen=True)
class WriteFile:
    """A new file with this content (the generated /etc files): written into
    the root's tmpfs, read-only with the root once it is pivoted into."""

    path: str
    data: bytes


@dataclass(frozen=True)
class Overlay:
    """An overlay at `target`: `lower` read-only below, `upper` (with its
    `work`) above; without an upper, a read-only overlay of `over` on `lower`."""

    target: str
    lower: str
    upper: str = ""
    work: str = ""
    over: str = ""

    @property
    def flags(self) -> int:
        return OVERLAY_FLAGS | (0 if self.upper else libc.MS_RDONLY)


@dataclass(frozen=True)
class Unmount:
    """Detach the mount at `target` (a mount still used, by an overlay, lives on)."""

    target: str


@dataclass(frozen=True)
class Chown:
    """Give a directory of the root's own tmpfs (never a mount point) to `uid`."""

    path: str
    uid: int


@dataclass(frozen=True)
class CopyFile:
    """Fill `path`, a file of the root's own tmpfs, with the host file
    `source` (never followed if it is a link), owned by `uid`."""

    source: str
    path: str
    uid: int


Op = (
    MakeDir | MakeFile | MakeSymlink | Mount | Protect | WriteFile | Overlay | Unmount | Chown
    | CopyFile | ProcEntries
)  # fmt: skip


@dataclass(frozen=True)
class RootInputs:
    root: str  # host directory the job root is mounted on
    allowed: Mapping[str, HostEntry]  # allowed mount path -> what it is on the host
    workspace: str  # host path (already resolved) mounted read-write at /work
    etc_files: Mapping[str, bytes]  # generated /etc files: name -> content
    tmp_size_bytes: int
    # (host mount point, name, read_only): bound at /volumes/NAME.
    volumes: Sequence[tuple[str, str, bool]] = ()
    # A custom network's shared hosts file, bound at /etc/hosts instead of the
    # generated one: the daemon rewrites it in place as jobs join and leave.
    hosts_file: str = ""
    # Jobs run in a user namespace: volumes are bound idmapped through it, so
    # their root owns the files the host's root owns there (and back).
    idmapped_volumes: bool = False
    runtime: RuntimeRoot | None = None  # a runtime at /opt/runtime
    build: BuildRoot | None = None  # a runtime build's root (see runtime_root)
    # (host device node, name): bound at /dev/NAME (a GPU job's devices).
    devices: Sequence[tuple[str, str]] = ()
    driver_proc: DriverProc | None = None  # a GPU job's /proc/driver/nvidia
    driver_binds: DriverBinds | None = None  # a GPU job's /usr/local/nvidia


class _Planner:
    def __init__(self, root: str) -> None:
        self.root = root
        self.ops: list[Op] = []
        self.made: set[str] = {root}
        self.links: set[str] = set()

    def target(self, path: str) -> str:
        return join_under(self.root, path)

    def under_link(self, path: str) -> bool:
        parts = components(path)
        return any(
            join_under(self.root, "/".join(parts[:i])) in self.links
            for i in range(1, len(parts) + 1)
        )

    def dirs(self, target: str) -> None:
        """MakeDir for `target` and each missing ancestor, outermost first."""
        rel = components(target[len(self.root) :])
        for i in range(1, len(rel) + 1):
            path = join_under(self.root, "/".join(rel[:i]))
            if path not in self.made:
                self.made.add(path)
                self.ops.append(MakeDir(path))

    def file(self, target: str) -> None:
        self.dirs(os.path.dirname(target))
        if target not in self.made:
            self.made.add(target)
            self.ops.append(MakeFile(target))

    def bind_ro(self, source: str, target: str, is_dir: bool, protect: bool = True) -> None:
        """A read-only bind; without `protect` the caller protects it with others."""
        if is_dir:
            self.dirs(target)
        else:
            self.file(target)
        self.ops.append(Mount(source, target, None, libc.MS_BIND | libc.MS_REC))
        if protect:
            self.ops.append(Protect(target, RO_ATTRS))


def plan_root(inputs: RootInputs) -> list[Op]:
    """The whole plan, under the job's root."""
    base, job = plan_parts(inputs)
    return [_relocate(op, inputs.root) for op in (*base, *job)]


def base_key(inputs: RootInputs) -> BaseKey:
    """What the shared part of a plan depends on (see base_plan)."""
    return tuple(sorted(inputs.allowed.items())), inputs.tmp_size_bytes


def plan_parts(inputs: RootInputs) -> tuple[tuple[Op, ...], list[Op]]:
    """The plan under BASE_ROOT, in two parts: the one every job with the same
    allowed mounts and /tmp size shares (cached), then this job's own ops."""
    ops, made, links = base_plan(*base_key(inputs))
    p = _Planner(BASE_ROOT)
    p.made, p.links = set(made), set(links)
    # Again for the job: a spare init listed its /proc when it was made, and
    # an entry may have appeared since (only new ones are bound).
    p.ops.append(_proc_entries(p))
    work = p.target("/work")
    p.dirs(work)
    p.ops.append(Mount(inputs.workspace, work, None, libc.MS_BIND | libc.MS_REC))
    p.ops.append(Protect(work, libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV))
    _plan_volumes(p, inputs.volumes, inputs.allowed, inputs.idmapped_volumes)
    _plan_job_devices(p, inputs.devices)
    if inputs.driver_proc is not None:
        from joblet.isolation.driver_proc import plan_driver_proc

        plan_driver_proc(p, inputs.driver_proc)
    provided: frozenset[str] = frozenset()
    if inputs.runtime is not None or inputs.build is not None:
        from joblet.isolation import runtime_root

        if inputs.build is not None:
            runtime_root.plan_build(p, inputs.build, inputs.allowed, inputs.idmapped_volumes)
        elif inputs.runtime is not None:
            # A GPU job's driver directory shares the runtime's skeleton.
            binds = inputs.driver_binds
            extra = ("/usr/local/nvidia",) if binds is not None and binds.files else ()
            provided = runtime_root.plan_runtime(
                p, inputs.runtime, inputs.allowed, inputs.idmapped_volumes,
                extra_dirs=extra, extra_host=binds.host if binds is not None else None,
            )  # fmt: skip
    if inputs.driver_binds is not None and inputs.build is None:
        from joblet.isolation.driver_binds import plan_driver_binds

        plan_driver_binds(p, inputs.driver_binds, inputs.allowed, provided)
    if not p.under_link("/etc"):
        for name in GENERATED_ETC:
            target = p.target("/etc/" + name)
            if name == "hosts" and inputs.hosts_file:
                p.bind_ro(inputs.hosts_file, target, False)
            elif name in inputs.etc_files:
                p.dirs(os.path.dirname(target))
                p.ops.append(WriteFile(target, inputs.etc_files[name]))
    return ops, p.ops


# Plans are made under this stand-in root and moved to each job's root (or
# compiled relative to it). The part that depends only on the allowed mounts
# and the /tmp size is planned once: planning it costs more than all the rest
# of a launch's preparation.
BASE_ROOT = "/.joblet-base-root"
BaseKey = tuple[tuple[tuple[str, HostEntry], ...], int]


@functools.lru_cache(maxsize=16)
def base_plan(
    allowed: tuple[tuple[str, HostEntry], ...], tmp_size_bytes: int
) -> tuple[tuple[Op, ...], frozenset[str], frozenset[str]]:
    p = _Planner(BASE_ROOT)
    p.ops.append(Mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE))
    p.ops.append(Mount("tmpfs", BASE_ROOT, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, ROOT_TMPFS))
    _plan_allowed(p, dict(allowed))
    # Only the allowed binds are below the fresh root yet: one recursive call
    # makes them all read-only, then the root's tmpfs is writable again
    # (this plan writes into it; it is made read-only once pivoted into).
    p.ops.append(Protect(BASE_ROOT, RO_ATTRS))
    p.ops.append(Protect(BASE_ROOT, 0, clear=libc.MOUNT_ATTR_RDONLY, recursive=False))
    _plan_proc(p)
    _plan_dev(p)
    tmp = p.target("/tmp")
    p.dirs(tmp)
    size = f"mode=1777,size={tmp_size_bytes}"
    p.ops.append(Mount("tmpfs", tmp, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, size))
    return tuple(p.ops), frozenset(p.made), frozenset(p.links)


def _move(path: str, root: str) -> str:
    """`path` planned under BASE_ROOT, moved under `root` (others unchanged)."""
    if path == BASE_ROOT:
        return root
    if path.startswith(BASE_ROOT + "/"):
        return root + path[len(BASE_ROOT) :]
    return path


def _relocate(op: Op, root: str) -> Op:
    match op:
        case MakeDir(path=path):
            return MakeDir(_move(path, root))
        case MakeFile(path=path):
            return MakeFile(_move(path, root))
        case MakeSymlink(link=link, path=path):
            return MakeSymlink(link, _move(path, root))  # the link text stays the job's
        case WriteFile(path=path, data=data):
            return WriteFile(_move(path, root), data)
        case Mount():
            source = None if op.source is None else _move(op.source, root)
            return Mount(source, _move(op.target, root), op.fstype, op.flags, op.data,
                         op.optional, op.idmapped)  # fmt: skip
        case Protect():
            return Protect(_move(op.target, root), op.attrs, op.optional, op.clear, op.recursive)
        case ProcEntries():
            return ProcEntries(_move(op.proc, root), op.readonly, op.masked)
        case Overlay():
            paths = (op.target, op.lower, op.upper, op.work, op.over)
            return Overlay(*(_move(path, root) if path else "" for path in paths))
        case Unmount(target=target):
            return Unmount(_move(target, root))
        case Chown(path=path, uid=uid):
            return Chown(_move(path, root), uid)
        case CopyFile(source=source, path=path, uid=uid):
            return CopyFile(source, _move(path, root), uid)
    raise AssertionError(f"unknown op {op!r}")  # pragma: no cover


def _plan_allowed(p: _Planner, allowed: Mapping[str, HostEntry]) -> None:
    for path in sorted(allowed):
        entry = allowed[path]
        if entry.kind is Kind.MISSING or not components(path) or p.under_link(path):
            continue
        if path in _GENERATED_PATHS:  # the job's own file goes there
            continue
        target = p.target(path)
        if entry.kind is Kind.SYMLINK:
            # Recreate the link (merged-/usr hosts: /bin -> usr/bin); it resolves
            # inside the job root, never on the host.
            p.dirs(os.path.dirname(target))
            p.links.add(target)
            p.ops.append(MakeSymlink(entry.link, target))
        else:
            p.bind_ro(path, target, entry.kind is Kind.DIR, protect=False)


def _plan_volumes(
    p: _Planner,
    volumes: Sequence[tuple[str, str, bool]],
    allowed: Mapping[str, HostEntry],
    idmapped: bool = False,
) -> None:
    """Each volume's host mount point bound at /volumes/NAME, nosuid and nodev.

    The source is the mount point the daemon owns (ROOT/volumes/NAME/mnt), a
    mount root the job cannot replace; the job's own symlinks inside a volume
    are never resolved here. The targets are made in the fresh root tmpfs,
    so /volumes must not come from the host."""
    if not volumes:
        return
    clash = [path for path, e in allowed.items() if e.kind is not Kind.MISSING
             and components(path)[:1] == [VOLUMES_DIR]]  # fmt: skip
    if clash or p.under_link("/" + VOLUMES_DIR):
        raise UnsafePath(f"/{VOLUMES_DIR} is an allowed host mount; volumes cannot go there")
    for source, name, read_only in volumes:
        if len(components(name)) != 1 or components(name)[0] != name:
            raise UnsafePath(f"invalid volume name {name!r}")
        target = p.target(f"/{VOLUMES_DIR}/{name}")
        p.dirs(target)
        p.ops.append(Mount(source, target, None, libc.MS_BIND, idmapped=idmapped))
        attrs = libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV
        p.ops.append(Protect(target, attrs | (libc.MOUNT_ATTR_RDONLY if read_only else 0)))


def _plan_proc(p: _Planner) -> None:
    proc = p.target("/proc")
    p.dirs(proc)
    flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
    p.ops.append(Mount("proc", proc, "proc", flags))
    p.ops.append(_proc_entries(p))


def _proc_entries(p: _Planner) -> ProcEntries:
    readonly = (*READONLY_PROC_PATHS, *PROC_KERNEL_ENTRIES)
    return ProcEntries(p.target("/proc"), readonly, MASKED_PROC_FILES)


def _plan_job_devices(p: _Planner, devices: Sequence[tuple[str, str]]) -> None:
    """A job's own device nodes (its GPUs), bound like the base ones."""
    for source, name in devices:
        if len(components(name)) != 1 or components(name)[0] != name:
            raise UnsafePath(f"invalid device name {name!r}")
        target = p.target(f"/dev/{name}")
        p.file(target)
        p.ops.append(Mount(source, target, None, libc.MS_BIND))
        p.ops.append(Protect(target, DEVICE_ATTRS))


def _plan_dev(p: _Planner) -> None:
    dev = p.target("/dev")
    p.dirs(dev)
    # nodev on the tmpfs: a node a job creates with mknod does not work; the
    # bind-mounted host nodes below are separate mounts and do. They are the
    # host's inodes, so they are bound read-only (DEVICE_ATTRS).
    tmpfs_flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
    p.ops.append(Mount("tmpfs", dev, "tmpfs", tmpfs_flags, "mode=0755,size=64k"))
    for name in DEVICES:
        p.file(f"{dev}/{name}")
        p.ops.append(Mount(f"/dev/{name}", f"{dev}/{name}", None, libc.MS_BIND))
    # The device binds are all that is below /dev yet: protected in one call,
    # then the tmpfs itself is writable again (pts, shm, links, a GPU's nodes).
    p.ops.append(Protect(dev, DEVICE_ATTRS))
    p.ops.append(Protect(dev, 0, clear=libc.MOUNT_ATTR_RDONLY, recursive=False))
    pts = f"{dev}/pts"
    p.dirs(pts)
    pts_flags = libc.MS_NOSUID | libc.MS_NOEXEC
    p.ops.append(Mount("devpts", pts, "devpts", pts_flags, "newinstance,ptmxmode=0666,mode=0620"))
    shm = f"{dev}/shm"
    p.dirs(shm)
    p.ops.append(Mount("tmpfs", shm, "tmpfs", tmpfs_flags, "mode=1777,size=64m"))
    for link, name in DEV_LINKS:
        p.ops.append(MakeSymlink(link, f"{dev}/{name}"))


OVERLAY_FLAGS = libc.MS_NOSUID | libc.MS_NODEV


def overlay_options(op: Overlay, rel: Callable[[str], str] = str) -> str:
    """overlayfs's mount data for `op`, each path passed through `rel`."""
    if not op.upper:
        return f"lowerdir={rel(op.over)}:{rel(op.lower)}"
    return f"lowerdir={rel(op.lower)},upperdir={rel(op.upper)},workdir={rel(op.work)}"


def copy_host_file(source: bytes, path: bytes, uid: int) -> None:
    """The content and mode of host file `source` into the existing `path`."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    src = os.open(source, flags)
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{os.fsdecode(source)} is no regular file")
        dst = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while chunk := os.read(src, 1 << 16):
                os.write(dst, chunk)
            os.fchmod(dst, stat.S_IMODE(st.st_mode) & 0o777)
            os.fchown(dst, uid, uid)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def probe_host(paths: Sequence[str]) -> dict[str, HostEntry]:
    """What each allowed path is on the host (lstat: symlinks are not followed)."""
    found: dict[str, HostEntry] = {}
    for path in paths:
        try:
            st = os.lstat(path)
        except OSError:
            found[path] = HostEntry(Kind.MISSING)
            continue
        if stat.S_ISLNK(st.st_mode):
            found[path] = HostEntry(Kind.SYMLINK, os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            found[path] = HostEntry(Kind.DIR)
        else:
            found[path] = HostEntry(Kind.FILE)
    return found


def _ensure_not_link(path: str, want_dir: bool) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode) != want_dir:
        raise UnsafePath(f"unexpected file type at mount target {path}")


def _make_dir(path: str) -> None:
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        _ensure_not_link(path, True)


def _make_file(path: str) -> None:
    flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    os.close(os.open(path, flags, 0o644))


def write_new_file(path: str | bytes, data: bytes) -> None:
    """Create `path` (never through a symlink, never an existing file) holding `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _mount(op: Mount) -> None:
    try:
        libc.mount(op.source, op.target, op.fstype, op.flags, op.data)
    except FileNotFoundError:
        if not op.optional:
            raise


def _protect(op: Protect) -> None:
    attrs = libc.MountAttrs(op.attrs, op.recursive, op.clear)
    err = libc.mount_setattr_raw(os.fsencode(op.target), attrs)
    if err and not (op.optional and err == errno.ENOENT):
        raise OSError(err, f"mount_setattr: {os.strerror(err)}", op.target)


def _proc_op(op: ProcEntries) -> None:
    from joblet.isolation import procmask

    names = (tuple(map(os.fsencode, op.readonly)), tuple(map(os.fsencode, op.masked)))
    if err := procmask.bind_entries(os.fsencode(op.proc), *names):
        raise OSError(err, f"/proc entries: {os.strerror(err)}", op.proc)


def apply_plan(ops: Sequence[Op]) -> None:
    """Execute a plan; runs in the job process, in its own mount namespace."""
    for op in ops:
        if isinstance(op, Mount):
            _mount(op)
        elif isinstance(op, Protect):
            _protect(op)
        elif isinstance(op, MakeDir):
            _make_dir(op.path)
        elif isinstance(op, MakeFile):
            _make_file(op.path)
        elif isinstance(op, WriteFile):
            write_new_file(op.path, op.data)
        elif isinstance(op, Overlay):
            libc.mount("overlay", op.target, "overlay", op.flags, overlay_options(op))
        elif isinstance(op, Unmount):
            libc.umount2(op.target, libc.MNT_DETACH)
        elif isinstance(op, Chown):
            os.lchown(op.path, op.uid, op.uid)
        elif isinstance(op, CopyFile):
            copy_host_file(os.fsencode(op.source), os.fsencode(op.path), op.uid)
        elif isinstance(op, ProcEntries):
            _proc_op(op)
        else:
            os.symlink(op.link, op.path)
