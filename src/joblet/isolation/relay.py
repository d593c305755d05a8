"""Copy a job's stdout and stderr pipes into its framed log file."""

from __future__ import annotations

import os
import time

from joblet.logs.format import HEADER, Stream

READ_SIZE = 1024 * 1024  # the pipe holds 1 MiB: one read per fill, not sixteen
TRUNCATED_NOTE = b"output truncated: the job's log reached its size limit\n"
DROPPED_NOTE = b"output dropped: %s; it resumes once the log can be written again\n"
# While output is dropped, how often the relay looks for room again, and how
# much free space it wants before it writes (a few bytes free would let
# every other record in and so mark every other gap).
RETRY_S = 1.0
RESUME_FREE_BYTES = 1 << 20

# One buffer for every read of every job: a fresh 1 MiB object per read costs
# more (allocation and page faults) than the copy out of the pipe, and one per
# job would cost 1 MiB of RSS per running job. Sharing it is safe because the
# launcher relays in one thread and each read is written out before the next.
_BUFFER = bytearray(READ_SIZE)
_VIEW = memoryview(_BUFFER)


class LogRelay:
    """Appends one framed record per pipe read; past `max_bytes` of output it
    writes one SYSTEM record and discards the rest (the job keeps running).

    When the log cannot be written (the disk is full) the output is dropped,
    never the job or the relay: one SYSTEM record marks the gap (written as
    soon as it fits), and output is recorded again once there is room.
    """

    def __init__(self, log_path: str, max_bytes: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(log_path, flags, 0o640)
        self._max = max_bytes
        self._end = os.fstat(self._fd).st_size  # where the next record starts
        self.written = 0
        self.truncated = False
        self.dropped = 0  # bytes of output lost for want of room
        self._dropping = False
        self._note: bytes | None = None  # the gap's note, until it is written
        self._next_try = 0.0

    def pump(self, fd: int, stream: Stream) -> bool:
        """Read once from `fd` and record it; False at end of file."""
        try:
            size = os.readv(fd, [_BUFFER])
        except BlockingIOError:
            return True
        if not size:
            return False
        self.record(stream, _VIEW[:size])
        return True

    def record(self, stream: Stream, data: bytes | memoryview) -> None:
        if self.truncated:
            return
        room = self._max - self.written
        if len(data) > room:
            if room > 0:
                self._append(stream, data[:room])
            self.truncated = True
            self._append(Stream.SYSTEM, TRUNCATED_NOTE, count=False)
            return
        self._append(stream, data)

    def _append(self, stream: Stream, data: bytes | memoryview, count: bool = True) -> None:
        if self._dropping and not self._may_resume():
            self.dropped += len(data)
            return
        try:
            self._write(stream, data)
        except OSError as exc:
            self.dropped += len(data)
            self._dropping = True
            self._next_try = time.monotonic() + RETRY_S
            self._note = DROPPED_NOTE % (exc.strerror or str(exc)).encode().lower()
            self._write_note()
            return
        if count:
            self.written += len(data)

    def _may_resume(self) -> bool:
        """While dropping: write the gap's note and end the gap once there is room."""
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + RETRY_S
        self._write_note()
        if self._note is not None or not _has_room(self._fd):
            return False
        self._dropping = False
        return True

    def _write_note(self) -> None:
        if self._note is None:
            return
        try:
            self._write(Stream.SYSTEM, self._note)
        except OSError:
            return  # still no room: the next try writes it
        self._note = None

    def _write(self, stream: Stream, data: bytes | memoryview) -> None:
        """Append one whole record, or nothing: a record cut short by a full
        disk is cut off again, since readers would take it for damage."""
        # Header and output go out in one writev, so a record lands whole
        # (O_APPEND) and the output is never copied into a joined record.
        header = HEADER.pack(stream, time.time_ns(), len(data))
        parts = [memoryview(header), memoryview(data)]
        try:
            while parts:
                sent = os.writev(self._fd, parts)
                parts = _after(parts, sent)
        except OSError:
            os.ftruncate(self._fd, self._end)
            raise
        self._end += len(header) + len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _has_room(fd: int) -> bool:
    try:
        stat = os.fstatvfs(fd)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize >= RESUME_FREE_BYTES


def _after(parts: list[memoryview], sent: int) -> list[memoryview]:
    """What is left of `parts` once `sent` bytes of them were written."""
    while parts and sent >= len(parts[0]):
        sent -= len(parts[0])
        parts = parts[1:]
    if parts and sent:
        parts = [parts[0][sent:], *parts[1:]]
    return parts
