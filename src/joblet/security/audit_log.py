"""The daemon's audit log: one JSON line per mutating or refused RPC, in
`ROOT/logs/audit.log` (mode 0600), rotated by size (see `audit_config`).

A line is one write(2) on a file opened O_APPEND: cheap enough to do on the
event loop (a few microseconds into the page cache), and whole even if the
daemon dies mid-call. Rotation renames; the next line opens a new file.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc

from joblet.security.audit import (
    AuditRecord,
    object_id,
    rfc3339_now,
    short_message,
    should_record,
    to_json_line,
)
from joblet.security.audit_config import AuditConfig
from joblet.security.roles import PEER_SUBJECT_KEY, Caller, parse_subject

log = logging.getLogger(__name__)

FILE_MODE = 0o600


def rotated_paths(path: Path, max_files: int) -> list[Path]:
    """`path` and its rotated files, oldest first."""
    return [*(path.with_name(f"{path.name}.{n}") for n in range(max_files, 0, -1)), path]


class RotatingLines:
    """Appends lines to a file, rotating it past `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int, max_files: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._max_files = max_files
        self._fd = -1
        self._size = 0
        # Plain (thread-run) handlers write from a thread; a rotation must not interleave.
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        data = (line + "\n").encode()
        with self._lock:
            if self._fd < 0:
                self._open()
            elif self._size + len(data) > self._max_bytes and self._size > 0:
                self._rotate()
            self._size += os.write(self._fd, data)

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        self._fd = os.open(self.path, flags, FILE_MODE)
        os.fchmod(self._fd, FILE_MODE)  # an older file, or a umask, may say otherwise
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        self._close()
        names = rotated_paths(self.path, self._max_files)
        if self._max_files == 0:
            self.path.unlink(missing_ok=True)
        for older, newer in itertools.pairwise(names):
            if newer.exists():
                newer.replace(older)
        self._open()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class AuditTrail:
    """What the interceptor tells about each call, written as audit lines."""

    def __init__(self, path: Path, config: AuditConfig) -> None:
        self.path = path
        self._lines = RotatingLines(self.path, config.max_bytes, config.max_files)
        self._failed = False

    def called(
        self,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        *,
        caller: Caller | None,
        request: Any,
        response: Any,
        error: BaseException | None,
    ) -> None:
        outcome, message = call_outcome(context, error)
        if not should_record(method, outcome):
            return
        cn, role = identity(caller, context)
        record = AuditRecord(
            time=rfc3339_now(), cn=cn, role=role, peer=context.peer(), rpc=method,
            object=object_id(method, request, response), outcome=outcome,
            message="" if outcome == "OK" else short_message(message),
        )  # fmt: skip
        self.write(record)

    def write(self, record: AuditRecord) -> None:
        try:
            self._lines.write(to_json_line(record))
            self._failed = False
        except OSError as exc:
            # The call itself went through; say once that its record did not.
            if not self._failed:
                log.error("audit log %s: %s (records are lost)", self.path, exc.strerror)
            self._failed = True

    def close(self) -> None:
        self._lines.close()


def call_outcome(
    context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None
) -> tuple[str, str]:
    """The status code name a call ended with, and its details."""
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED", "the client went away"
    code = context.code()
    details = context.details() or ""
    if isinstance(code, grpc.StatusCode):
        name = code.name
    elif isinstance(code, int) and code != 0:
        name = _code_name(code)
    else:
        name = "OK" if error is None else "UNKNOWN"
    if error is not None and not details and not isinstance(error, grpc.aio.AbortError):
        details = type(error).__name__
    return name, details.decode(errors="replace") if isinstance(details, bytes) else str(details)


def _code_name(value: int) -> str:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code.name
    return "UNKNOWN"


def identity(caller: Caller | None, context: grpc.aio.ServicerContext[Any, Any]) -> tuple[str, str]:
    """(CN, role) of the peer; a certificate without a known role gives its OU as it is."""
    if caller is not None:
        return caller.name, caller.role.value
    subjects: Iterable[bytes] = context.auth_context().get(PEER_SUBJECT_KEY) or ()
    subject = next(iter(subjects), None)
    if subject is None:
        return "", ""
    try:
        pairs = parse_subject(subject.decode(errors="replace"))
    except ValueError:
        return "", ""
    cn = next((value for key, value in pairs if key.upper() == "CN"), "")
    ou = ",".join(value for key, value in pairs if key.upper() == "OU")
    return cn, ou
