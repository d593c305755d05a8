"""Just enough PNG for screenshot comparisons: decode 8-bit RGB(A)
non-interlaced images (what Chromium writes) and write RGBA ones."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def decode(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGBA bytes)."""
    assert data.startswith(SIGNATURE), "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and not interlace, "unsupported PNG"
    bpp = 4 if color == 6 else 3
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            line[x] = (line[x] + (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]) & 0xFF
        rows.append(bytes(line) if bpp == 4 else b"".join(
            bytes(line[i : i + 3]) + b"\xff" for i in range(0, stride, 3)))  # fmt: skip
        prev = line
    return width, height, rows


def encode(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + row for row in rows))
    return SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def compare(actual: bytes, expected: bytes, diff_path: Path) -> float:
    """The share of pixels that differ; a diff image (red where) is written."""
    w1, h1, a = decode(actual)
    w2, h2, b = decode(expected)
    if (w1, h1) != (w2, h2):
        return 1.0
    differing, out = 0, []
    for row_a, row_b in zip(a, b, strict=True):
        line = bytearray(row_a)
        for x in range(0, len(row_a), 4):
            if row_a[x : x + 3] != row_b[x : x + 3]:
                differing += 1
                line[x : x + 4] = b"\xff\x00\x00\xff"
        out.append(bytes(line))
    diff_path.write_bytes(encode(w1, h1, out))
    return differing / (w1 * h1)
