"""Load a device program (resources.bpf_program) with bpf(2) and attach it
to a cgroup v2 directory: cgroup v2 has no devices files."""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Sequence
from pathlib import Path

from joblet.errors import IsolationError
from joblet.isolation import libc
from joblet.resources.bpf_program import LICENSE, build_program
from joblet.resources.device_rules import DeviceRule

# include/uapi/linux/bpf.h
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
# Several programs on one group, each of which must allow: a job's program
# never replaces one a parent (systemd, a container runtime) put above it.
BPF_F_ALLOW_MULTI = 2
_ATTR_SIZE = 128  # zero tail: fields a newer kernel adds stay unset
_LOG_SIZE = 1 << 16


def load_program(program: bytes, name: str = "joblet_dev") -> int:
    """The fd of the loaded program; IsolationError with the verifier's log
    when the kernel refuses it."""
    keep_insns, insns = libc.c_buffer(program)
    keep_license, license_ = libc.c_buffer(LICENSE)
    try:
        return libc.bpf(BPF_PROG_LOAD, _load_attr(program, insns, license_, name))
    except OSError as first:
        keep_log, log_buf = libc.c_buffer(bytes(_LOG_SIZE))
        try:
            libc.bpf(BPF_PROG_LOAD, _load_attr(program, insns, license_, name, log_buf))
        except OSError:
            verifier = keep_log.raw.split(b"\0", 1)[0].decode(errors="replace")
            detail = f"; verifier: {verifier.strip()[-400:]}" if verifier.strip() else ""
            raise IsolationError(
                f"cannot load the device filter: {first.strerror}{detail}"
            ) from first
        raise IsolationError(f"cannot load the device filter: {first.strerror}") from first
    finally:
        del keep_insns, keep_license


def _load_attr(program: bytes, insns: int, license_: int, name: str, log_buf: int = 0) -> bytes:
    head = struct.pack(
        "<IIQQIIQII16s",
        BPF_PROG_TYPE_CGROUP_DEVICE,
        len(program) // 8,
        insns,
        license_,
        1 if log_buf else 0,
        _LOG_SIZE if log_buf else 0,
        log_buf,
        0,  # kern_version
        0,  # prog_flags
        name.encode()[:15],
    )
    return head.ljust(_ATTR_SIZE, b"\0")


def attach_program(group: Path, prog_fd: int) -> None:
    """Attach the program to the cgroup directory `group` (BPF_F_ALLOW_MULTI)."""
    try:
        dir_fd = os.open(group, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise IsolationError(f"cannot open cgroup {group}: {exc.strerror}") from exc
    try:
        attr = struct.pack("<IIII", dir_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        libc.bpf(BPF_PROG_ATTACH, attr.ljust(_ATTR_SIZE, b"\0"))
    except OSError as exc:
        raise IsolationError(f"cannot attach the device filter to {group}: {exc.strerror}") from exc
    finally:
        os.close(dir_fd)


def apply_device_filter(group: Path, rules: Sequence[DeviceRule]) -> None:
    """Allow `rules` and nothing else to the processes of `group`. The group
    holds the program; the fd is closed (cgroup removal frees the program)."""
    prog_fd = load_program(build_program(rules))
    try:
        attach_program(group, prog_fd)
    finally:
        os.close(prog_fd)


def bpf_unavailable() -> str:
    """Why this host cannot load a device program, or "" when it can."""
    try:
        fd = load_program(build_program(()))
    except (IsolationError, NotImplementedError) as exc:
        return str(exc)
    with contextlib.suppress(OSError):
        os.close(fd)
    return ""
