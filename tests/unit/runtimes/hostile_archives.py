"""Builders of real zip and tar.gz files, hostile ones included, for the unpack tests."""

from __future__ import annotations

import gzip
import io
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

# (name, kind, payload): kind "file", "exec", "dir", "symlink" (payload = target),
# "hardlink" (payload = earlier member), "fifo", "chr"
Spec = tuple[str, str, bytes | str]


def write_tar_gz(path: Path, members: Iterable[Spec]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            data = None
            if kind in ("file", "exec"):
                assert isinstance(payload, bytes)
                info.size, info.mode, data = (
                    len(payload),
                    0o4755 if kind == "exec" else 0o644,
                    payload,
                )
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def write_zip(path: Path, members: Iterable[Spec]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, kind, payload in members:
            info = zipfile.ZipInfo(name + ("/" if kind == "dir" else ""))
            info.compress_type = zipfile.ZIP_DEFLATED
            if kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, str(payload))
            elif kind == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                zf.writestr(info, b"")
            elif kind == "fifo":
                info.external_attr = (stat.S_IFIFO | 0o644) << 16
                zf.writestr(info, b"")
            else:
                mode = 0o755 if kind == "exec" else 0o644
                info.external_attr = (stat.S_IFREG | mode) << 16
                zf.writestr(info, payload if isinstance(payload, bytes) else payload.encode())
    return path


def many_files_tar_gz(path: Path, count: int) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        for i in range(count):
            tf.addfile(tarfile.TarInfo(f"f/{i}"), io.BytesIO(b""))
    return path


def many_files_zip(path: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            zf.writestr(f"f/{i}", b"")
    return path


_MIB = 1 << 20


def zeros_tar_gz(path: Path, mib: int) -> Path:
    """A tar.gz holding one file of `mib` MiB of zeros, a few KiB per MiB on disk:
    gzip members concatenate, so one compressed MiB is written `mib` times."""
    header = tarfile.TarInfo("zeros")
    header.size = mib * _MIB
    one = gzip.compress(bytes(_MIB), compresslevel=9)
    with open(path, "wb") as out:
        out.write(gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT)))
        for _ in range(mib):
            out.write(one)
        out.write(gzip.compress(bytes(1024)))  # end-of-archive blocks
    return path


def zeros_zip(path: Path, mib: int) -> Path:
    """A zip holding one file of `mib` MiB of zeros (mib < 4096, no zip64): its
    deflate stream is one fully flushed MiB repeated, then an empty final block."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(_MIB)) + comp.flush(zlib.Z_FULL_FLUSH)
    data_len = len(block) * mib + 2
    crc = 0
    zero = bytes(_MIB)
    for _ in range(mib):
        crc = zlib.crc32(zero, crc)
    size = mib * _MIB
    name = b"zeros"
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, data_len, size, len(name), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50, 0x031E, 20, 0, 8, 0, 0, crc, data_len, size, len(name), 0, 0, 0, 0,
        (stat.S_IFREG | 0o644) << 16, 0,
    )  # fmt: skip
    with open(path, "wb") as out:
        out.write(local + name)
        for _ in range(mib):
            out.write(block)
        out.write(b"\x03\x00")  # a final, empty fixed-Huffman block
        cd_at = out.tell()
        out.write(central + name)
        cd_len = out.tell() - cd_at
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, cd_len, cd_at, 0))
    return path
