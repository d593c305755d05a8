"""A sealed in-memory copy of an executable, for the jobs' init to run from.

A process's /proc/<pid>/exe is a link to the very inode it was exec'd from,
and it stays one even where that file is not visible: a job's root could
chmod, chown, touch or setxattr the host's tini through /proc/1/exe (mode 4755
would make it a setuid-root binary on the host, mode 0 would stop every later
job), or write to it once it stopped running. So the launcher copies tini
once into a memfd and execs that (runc's answer to CVE-2019-5736). Seals stop
any change of its content; the immutable flag stops any change of its
metadata, which seals do not cover: the copy is shared by every job of the
launcher, and a job holds no CAP_LINUX_IMMUTABLE to clear the flag.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

# <linux/memfd.h>: MFD_EXEC (Linux 6.3) asks for an executable memfd even
# where vm.memfd_noexec=1 makes new memfds non-executable by default.
MFD_EXEC = 0x0010
# <linux/fs.h>: FS_IOC_SETFLAGS is _IOW('f', 2, long); the kernel reads an int.
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x00000010
SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


class SealError(OSError):
    """The kernel cannot give an executable, sealed, immutable copy."""


def sealed_copy(path: str, name: str) -> int:
    """A read-only, sealed, immutable memfd copy of the file at `path`.

    Returns its fd (close-on-exec); /proc/<pid>/exe of a process exec'd from
    it reads "/memfd:NAME (deleted)". Raises SealError when memfds cannot be
    executed or sealed here (OSError when `path` cannot be read)."""
    src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = _memfd(name)
        try:
            _copy(src, fd, path)
            os.fchmod(fd, 0o555)  # a memfd starts as 0777
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
            _make_immutable(fd)
        except OSError as exc:
            os.close(fd)
            raise SealError(exc.errno, f"cannot seal a copy of {path}: {exc.strerror}") from exc
    finally:
        os.close(src)
    return fd


def _make_immutable(fd: int) -> None:
    try:
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", FS_IMMUTABLE_FL))
    except OSError as exc:
        # tmpfs takes the flag since Linux 6.0; before that the copy's metadata
        # stays changeable, which reaches the launcher's jobs, never the host.
        if exc.errno not in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
            raise


def _memfd(name: str) -> int:
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        return os.memfd_create(name, flags | MFD_EXEC)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # before Linux 6.3: no MFD_EXEC, every memfd executes
            return os.memfd_create(name, flags)
        # EACCES: vm.memfd_noexec=2 refuses executable memfds.
        raise SealError(exc.errno, f"memfd_create: {exc.strerror} (vm.memfd_noexec?)") from exc


def _copy(src: int, fd: int, path: str) -> None:
    size = os.fstat(src).st_size
    offset = 0
    while offset < size:
        sent = os.sendfile(fd, src, offset, size - offset)
        if not sent:
            raise OSError(errno.EIO, f"{path} shrank while it was copied")
        offset += sent
