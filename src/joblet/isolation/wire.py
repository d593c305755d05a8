"""The launcher's wire protocol: JSON objects in length-prefixed frames over a
Unix socket.

Each frame is a 4-byte big-endian length, then that many bytes of one JSON
object. Unlike newline-delimited lines, a frame says up front how long it is,
so a reader can refuse an oversized one before buffering it and never scans
a large request for its end.

Requests carry an optional "id" the answer echoes, because a launch is
answered only once the job has exec'd (or failed) while other requests go on.
Events ({"event": "exit", ...}) are pushed to every connected client.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

PREFIX = struct.Struct(">I")
# Larger than any launch the daemon sends: a request's environment and
# arguments are bounded far below this by the kernel's exec limits (and the
# daemon checks before sending); uploads never travel to the launcher.
MAX_FRAME = 256 << 20
MAX_PENDING_OUT = 16 << 20
RECV_SIZE = 256 << 10


class FrameTooLarge(ValueError):
    """A frame over MAX_FRAME: refused before it is buffered."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) > MAX_FRAME:
        raise FrameTooLarge(f"a message of {len(body)} bytes exceeds the {MAX_FRAME} byte limit")
    return PREFIX.pack(len(body)) + body


def split_frames(buf: bytearray) -> list[bytes]:
    """Remove the whole frames at the start of `buf` and return their bodies."""
    bodies: list[bytes] = []
    pos = 0
    while len(buf) - pos >= PREFIX.size:
        (length,) = PREFIX.unpack_from(buf, pos)
        if length > MAX_FRAME:
            raise FrameTooLarge(f"a frame of {length} bytes exceeds the {MAX_FRAME} byte limit")
        end = pos + PREFIX.size + length
        if end > len(buf):
            break
        bodies.append(bytes(buf[pos + PREFIX.size : end]))
        pos = end
    del buf[:pos]
    return bodies


def decode(body: bytes) -> dict[str, Any]:
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("a request must be a JSON object")
    return message


class Connection:
    """One client socket of the launcher, non-blocking, with buffers."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = b""
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> list[dict[str, Any]] | None:
        """Requests read now; None when the peer closed or misbehaved."""
        try:
            data = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        self.inbuf += data
        try:
            return [decode(body) for body in split_frames(self.inbuf)]
        except ValueError:
            return None

    def queue(self, message: dict[str, Any]) -> bool:
        """Queue and try to send; False when the peer is gone or too slow."""
        self.outbuf += encode(message)
        return self.flush() and len(self.outbuf) <= MAX_PENDING_OUT

    def flush(self) -> bool:
        try:
            while self.outbuf:
                sent = self.sock.send(self.outbuf)
                self.outbuf = self.outbuf[sent:]
        except BlockingIOError:
            return True
        except OSError:
            return False
        return True

    def close(self) -> None:
        self.closed = True
        self.sock.close()
