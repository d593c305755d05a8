"""A root plan compiled into ready system-call arguments, and its executor.

The job's init runs the plan between clone and exec, in a copy of the
launcher's memory where every page Python writes to is first copied. So the
launcher does the work up front: paths are encoded, mount attributes packed,
and every target below the job's root is made relative to it (the init
changes into the root once it is mounted). That makes a compiled plan the
same for every job, so the part all jobs share is compiled once and cached;
the init only loops over the steps. Steps hold only bytes, ints and None, so
a job's own part can be sent to a spare init (see spares) with marshal.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from typing import Any

from joblet.isolation import libc, procmask, rootfs
from joblet.isolation.paths import UnsafePath
from joblet.isolation.rootfs import (
    BASE_ROOT,
    BaseKey,
    Chown,
    CopyFile,
    MakeDir,
    MakeFile,
    MakeSymlink,
    Mount,
    Op,
    Overlay,
    ProcEntries,
    Protect,
    RootInputs,
    Unmount,
    WriteFile,
    base_key,
    base_plan,
    overlay_options,
    plan_parts,
    write_new_file,
)

MOUNT, MOUNT_ROOT, PROTECT, MKDIR, MKFILE, SYMLINK, WRITE, IDMAP, PROC, UMOUNT, CHOWN, COPY = range(
    12
)
_NAMES = ("mount", "mount", "mount_setattr", "mkdir", "open", "symlink", "write", "idmapped bind",
          "/proc entries", "umount", "chown", "copy")  # fmt: skip
_FILE_FLAGS = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC

# (kind, arguments, optional): an optional step whose target is missing is
# skipped (kernel-dependent /proc files).
Step = tuple[int, tuple[Any, ...], bool]
Program = tuple[Step, ...]


def _path(path: str) -> bytes:
    """A planned path as the init uses it: relative once inside the root."""
    if path == BASE_ROOT:
        return b"."
    if path.startswith(BASE_ROOT + "/"):
        return os.fsencode(path[len(BASE_ROOT) + 1 :])
    return os.fsencode(path)


def _opt(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


@functools.lru_cache(maxsize=64)
def _attrs(attr_set: int, attr_clr: int = 0, recursive: bool = True) -> libc.MountAttrs:
    return libc.MountAttrs(attr_set, recursive, attr_clr)


def compile_op(op: Op) -> Step:
    """One op planned under BASE_ROOT as a step."""
    if isinstance(op, Mount):
        if op.target == BASE_ROOT:  # the root's own tmpfs: mounted on the job's root
            return MOUNT_ROOT, (_opt(op.source), _opt(op.fstype), op.flags, _opt(op.data)), False
        source = None if op.source is None else _path(op.source)
        if op.idmapped and source is not None:
            return IDMAP, (source, _path(op.target)), op.optional
        args = (source, _path(op.target), _opt(op.fstype), op.flags, _opt(op.data))
        return MOUNT, args, op.optional
    if isinstance(op, Protect):
        return PROTECT, (_path(op.target), op.attrs, op.clear, op.recursive), op.optional
    if isinstance(op, ProcEntries):
        names = tuple(map(os.fsencode, op.readonly)), tuple(map(os.fsencode, op.masked))
        return PROC, (_path(op.proc), *names), False
    if isinstance(op, MakeDir):
        return MKDIR, (_path(op.path),), False
    if isinstance(op, MakeFile):
        return MKFILE, (_path(op.path),), False
    if isinstance(op, MakeSymlink):
        return SYMLINK, (os.fsencode(op.link), _path(op.path)), False
    if isinstance(op, WriteFile):
        return WRITE, (_path(op.path), op.data), False
    return _compile_build_op(op)


def _compile_build_op(op: Op) -> Step:
    """The ops only runtime builds use (see runtime_root)."""
    if isinstance(op, Overlay):
        # Relative layer paths: overlayfs resolves them from the init's
        # working directory, the job's root.
        data = overlay_options(op, lambda path: os.fsdecode(_path(path)))
        args = (b"overlay", _path(op.target), b"overlay", op.flags, os.fsencode(data))
        return MOUNT, args, False
    if isinstance(op, Unmount):
        return UMOUNT, (_path(op.target),), False
    if isinstance(op, Chown):
        return CHOWN, (_path(op.path), op.uid), False
    if isinstance(op, CopyFile):
        return COPY, (_path(op.path), os.fsencode(op.source), op.uid), False
    raise AssertionError(f"unknown op {op!r}")  # pragma: no cover


@functools.lru_cache(maxsize=16)
def compiled_base(key: BaseKey) -> Program:
    ops, _, _ = base_plan(*key)
    return tuple(compile_op(op) for op in ops)


def compile_root(inputs: RootInputs) -> Program:
    """The job's whole root plan as a program; run it with `run(program, root)`."""
    return compiled_base(base_key(inputs)) + compile_job_part(inputs)


def compile_job_part(inputs: RootInputs) -> Program:
    """The steps after the shared part: this job's workspace, volumes and /etc files."""
    _, job_ops = plan_parts(inputs)
    return tuple(compile_op(op) for op in job_ops)


def run(program: Program, root: bytes, userns_fd: int = -1) -> None:
    """Execute a program in the job's own mount namespace. The working
    directory is the job's root from its MOUNT_ROOT step on; IDMAP steps see
    ids through the user namespace `userns_fd`."""
    for kind, args, optional in program:
        if kind == MOUNT:
            err = libc.mount_raw(*args)
        elif kind == IDMAP:
            err = libc.bind_idmapped_raw(args[0], args[1], userns_fd)
        elif kind == PROTECT:
            err = libc.mount_setattr_raw(args[0], _attrs(*args[1:]))
        elif kind == MKDIR:
            err = _make_dir(args[0])
        elif kind == MKFILE:
            os.close(os.open(args[0], _FILE_FLAGS, 0o644))
            err = 0
        elif kind == SYMLINK:
            os.symlink(*args)
            err = 0
        elif kind == WRITE:
            write_new_file(*args)
            err = 0
        elif kind == PROC:
            err = procmask.bind_entries(*args)
        elif kind >= UMOUNT:
            err = _build_step(kind, args)
        else:
            err = _mount_root(root, *args)
        if err and not (optional and err == errno.ENOENT):
            target = root if kind == MOUNT_ROOT else args[1] if kind in (MOUNT, IDMAP) else args[0]
            message = f"{_NAMES[kind]}: {os.strerror(err)}"
            raise OSError(err, message, os.fsdecode(target) if isinstance(target, bytes) else None)


def _build_step(kind: int, args: tuple[Any, ...]) -> int:
    """The steps only runtime builds take (see runtime_root)."""
    if kind == UMOUNT:
        return libc.umount_raw(args[0], libc.MNT_DETACH)
    if kind == CHOWN:
        os.lchown(args[0], args[1], args[1])
    else:
        rootfs.copy_host_file(args[1], args[0], args[2])
    return 0


def _mount_root(
    root: bytes, source: bytes | None, fstype: bytes | None, flags: int, data: bytes | None
) -> int:
    err = libc.mount_raw(source, root, fstype, flags, data)
    if not err:
        os.chdir(root)
    return err


def _make_dir(path: bytes) -> int:
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        # The fresh root holds only what the plan made: an existing entry must
        # be a directory of ours, never a symlink.
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(f"unexpected file type at mount target {os.fsdecode(path)}") from None
    return 0
