"""Unpacks a zip or tar(.gz) archive into a directory, checked by
`joblet.runtimes.archive` before anything is written.

It runs inside a runtime's build sandbox, before the build script, with only the
host's python3 and this package on a read-only path:

    PYTHONPATH=LIBDIR python3 -B -S -m joblet.runtimes.unpack \
        --max-bytes N --max-members N --max-ratio R [--strip-top] ARCHIVE DEST

Exit 0 and one summary line on stdout; exit 2 and one line on stderr when the
archive is refused (DEST is then left empty). Standard library only.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import stat
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from functools import partial
from typing import IO, cast

from joblet.runtimes.archive import ArchiveError, Caps, Entry, Kind, Member, check_stream
from joblet.runtimes.archive import plan as plan_members

_CHUNK = 1 << 20
_MAX_LINK = 4095  # PATH_MAX - 1: a zip symlink's target is its content
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def detect(path: str) -> str:
    """ "zip", "tar.gz" or "tar", from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if head[257:262] == b"ustar":
        return "tar"
    raise ArchiveError("not a zip, tar.gz or tar archive")


class _Counted:
    """A read-only file that counts the bytes read through it."""

    def __init__(self, raw: IO[bytes], check: Callable[[int], None] | None = None) -> None:
        self.raw = raw
        self.count = 0
        self.check = check

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        if self.check is not None:
            self.check(self.count)
        return data


def _open_tar(path: str, fmt: str, caps: Caps, stack: ExitStack) -> tarfile.TarFile:
    raw: IO[bytes] = stack.enter_context(open(path, "rb"))  # noqa: SIM115 (the stack closes it)
    if fmt == "tar":
        return stack.enter_context(tarfile.open(fileobj=raw, mode="r|"))
    packed = _Counted(raw)
    inflated = stack.enter_context(gzip.GzipFile(fileobj=cast(IO[bytes], packed), mode="rb"))
    # the ratio is checked while inflating, so a bomb stops long before its end
    guarded = _Counted(cast(IO[bytes], inflated), lambda n: check_stream(n, packed.count, caps))
    return stack.enter_context(tarfile.open(fileobj=cast(IO[bytes], guarded), mode="r|"))


def tar_member(info: tarfile.TarInfo) -> Member:
    if info.isreg():
        return Member(info.name, Kind.FILE, size=info.size, mode=info.mode)
    if info.isdir():
        return Member(info.name, Kind.DIR)
    if info.issym():
        return Member(info.name, Kind.SYMLINK, link=info.linkname)
    if info.islnk():
        return Member(info.name, Kind.HARDLINK, link=info.linkname)
    what = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device"}
    return Member(info.name, Kind.SPECIAL, what=what.get(info.type, "fifo or special file"))


def zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    mode = info.external_attr >> 16
    if info.flag_bits & 0x1:
        raise ArchiveError(f"archive member {info.filename!r}: encrypted")
    if info.is_dir() or stat.S_ISDIR(mode):
        return Member(info.filename, Kind.DIR)
    if stat.S_ISLNK(mode):
        if info.file_size > _MAX_LINK:
            raise ArchiveError(f"archive member {info.filename!r}: symlink target too long")
        target = zf.read(info).decode("utf-8", "surrogateescape")
        return Member(info.filename, Kind.SYMLINK, link=target)
    if mode and not stat.S_ISREG(mode):
        return Member(info.filename, Kind.SPECIAL, what="device, fifo or socket")
    return Member(
        info.filename, Kind.FILE, size=info.file_size, packed=info.compress_size, mode=mode
    )


class Writer:
    """Creates entries under one directory, walking every path with O_NOFOLLOW from
    that directory's fd: no symlink, even one it made itself, is ever followed."""

    def __init__(self, dest_fd: int) -> None:
        self.dest_fd = dest_fd
        self._dir: tuple[tuple[str, ...], int] | None = None

    def close(self) -> None:
        if self._dir is not None:
            os.close(self._dir[1])
            self._dir = None

    def _parent(self, parts: tuple[str, ...]) -> int:
        if self._dir is not None and self._dir[0] == parts:
            return self._dir[1]
        self.close()
        fd = os.dup(self.dest_fd)
        try:
            for part in parts:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        self._dir = (parts, fd)
        return fd

    def mkdir(self, entry: Entry) -> None:
        self._parent(entry.parts)

    def symlink(self, entry: Entry) -> None:
        os.symlink(entry.target, entry.parts[-1], dir_fd=self._parent(entry.parts[:-1]))

    def hardlink(self, entry: Entry) -> None:
        src_fd = os.open(".", _DIR_FLAGS, dir_fd=self._parent(entry.source[:-1]))
        try:
            dst = self._parent(entry.parts[:-1])
            os.link(
                entry.source[-1],
                entry.parts[-1],
                src_dir_fd=src_fd,
                dst_dir_fd=dst,
                follow_symlinks=False,
            )
        finally:
            os.close(src_fd)

    def file(self, entry: Entry, data: Callable[[], IO[bytes]]) -> int:
        fd = os.open(entry.parts[-1], _FILE_FLAGS, 0o600, dir_fd=self._parent(entry.parts[:-1]))
        written = 0
        try:
            with data() as stream:
                while chunk := stream.read(_CHUNK):
                    written += len(chunk)
                    if written > entry.size:
                        raise ArchiveError(f"archive member {entry.path!r}: longer than declared")
                    os.write(fd, chunk)
            os.fchmod(fd, entry.mode)  # no setuid/setgid, no group/other write
        finally:
            os.close(fd)
        if written != entry.size:
            raise ArchiveError(f"archive member {entry.path!r}: shorter than declared")
        return written


def write(writer: Writer, entry: Entry, data: Callable[[], IO[bytes]]) -> int:
    """Writes one entry; returns its bytes. OS errors name the member."""
    try:
        if entry.kind is Kind.DIR:
            writer.mkdir(entry)
        elif entry.kind is Kind.SYMLINK:
            writer.symlink(entry)
        elif entry.kind is Kind.HARDLINK:
            writer.hardlink(entry)
        elif entry.kind is Kind.FILE:
            return writer.file(entry, data)
    except OSError as exc:
        raise ArchiveError(f"archive member {entry.path!r}: {exc.strerror or exc}") from exc
    return 0


def _tar_members(
    path: str, fmt: str, caps: Caps
) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    with ExitStack() as stack:
        tf = _open_tar(path, fmt, caps, stack)
        for info in tf:
            yield tf, info


def _unpack_tar(path: str, fmt: str, caps: Caps, top: bool, writer: Writer) -> tuple[int, int]:
    # plan() tallies each member as it is yielded, so a streamed archive is
    # refused at the first header over a cap, before the rest is inflated
    listed = (tar_member(info) for _, info in _tar_members(path, fmt, caps))
    entries = {e.index: e for e in plan_members(listed, caps, top=top)}
    total = 0
    # a tar stream is read twice: checked whole first, written second
    for index, (tf, info) in enumerate(_tar_members(path, fmt, caps)):
        entry = entries.get(index)
        if entry is not None:
            total += write(writer, entry, partial(_extracted, tf, info))
    return len(entries), total


def _extracted(tf: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    stream = tf.extractfile(info)
    if stream is None:
        raise ArchiveError(f"archive member {info.name!r}: no data")
    return stream


def _unpack_zip(path: str, caps: Caps, top: bool, writer: Writer) -> tuple[int, int]:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > caps.max_members:
            raise ArchiveError(f"archive has more than {caps.max_members} members")
        entries = plan_members((zip_member(zf, i) for i in infos), caps, top=top)
        total = 0
        for entry in entries:
            info = infos[entry.index]
            total += write(writer, entry, partial(zf.open, info))
    return len(entries), total


def unpack(path: str, dest: str, caps: Caps, *, top: bool = False) -> tuple[int, int]:
    """Unpacks `path` into the existing empty directory `dest`; returns (entries, bytes).
    On any refusal `dest` is emptied again and ArchiveError raised."""
    fmt = detect(path)
    dest_fd = os.open(dest, _DIR_FLAGS)
    writer = Writer(dest_fd)
    try:
        if fmt == "zip":
            return _unpack_zip(path, caps, top, writer)
        return _unpack_tar(path, fmt, caps, top, writer)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile) as exc:
        _empty(dest_fd)
        raise ArchiveError(f"damaged archive: {exc}") from exc
    except BaseException:
        _empty(dest_fd)
        raise
    finally:
        writer.close()
        os.close(dest_fd)


def _empty(dir_fd: int) -> None:
    for name in os.listdir(dir_fd):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)  # fd-based: never follows links
        else:
            os.unlink(name, dir_fd=dir_fd)


def command(libdir: str, archive: str, dest: str, caps: Caps, *, top: bool) -> list[str]:
    """The argv that runs this module in a sandbox: host python3, package at `libdir`."""
    argv = ["/usr/bin/env", f"PYTHONPATH={libdir}", "python3", "-B", "-S", "-m", __name__]
    argv += ["--max-bytes", str(caps.max_bytes), "--max-members", str(caps.max_members)]
    argv += ["--max-ratio", f"{caps.max_ratio:g}"] + (["--strip-top"] if top else [])
    return [*argv, archive, dest]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="unpack", description=__doc__.splitlines()[0])
    parser.add_argument("archive")
    parser.add_argument("dest")
    parser.add_argument("--max-bytes", type=int, required=True)
    parser.add_argument("--max-members", type=int, required=True)
    parser.add_argument("--max-ratio", type=float, required=True)
    parser.add_argument("--strip-top", action="store_true", help="drop a shared top directory")
    args = parser.parse_args(argv)
    caps = Caps(args.max_bytes, args.max_members, args.max_ratio)
    try:
        os.makedirs(args.dest, exist_ok=True)
        count, total = unpack(args.archive, args.dest, caps, top=args.strip_top)
    except (ArchiveError, OSError) as exc:
        print(f"unpack: {exc}", file=sys.stderr)
        return 2
    print(f"unpacked {count} entries, {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
