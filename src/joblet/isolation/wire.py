"""The launcher's wire protocol: JSON objects, one per line, over a Unix socket.

Requests carry an optional "id" the answer echoes, because a launch is
answered only once the job has exec'd (or failed) while other requests go on.
Events ({"event": "exit", ...}) are pushed to every connected client.
"""

from __future__ import annotations

import json
import socket
from typing import Any

MAX_LINE = 1 << 20
MAX_PENDING_OUT = 16 << 20


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def split_lines(buf: bytes) -> tuple[list[bytes], bytes]:
    """Whole lines of `buf` and the incomplete rest."""
    *lines, rest = buf.split(b"\n")
    return [line for line in lines if line.strip()], rest


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a request must be a JSON object")
    return message


class Connection:
    """One client socket of the launcher, non-blocking, with buffers."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.inbuf = b""
        self.outbuf = b""
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> list[dict[str, Any]] | None:
        """Requests read now; None when the peer closed or misbehaved."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        lines, self.inbuf = split_lines(self.inbuf + data)
        if len(self.inbuf) > MAX_LINE:
            return None
        try:
            return [decode(line) for line in lines]
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
