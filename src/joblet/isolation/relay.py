"""Copy a job's stdout and stderr pipes into its framed log file."""

from __future__ import annotations

import os
import time

from joblet.logs.format import HEADER, Stream

READ_SIZE = 1024 * 1024  # the pipe holds 1 MiB: one read per fill, not sixteen
TRUNCATED_NOTE = b"output truncated: the job's log reached its size limit\n"

# One buffer for every read of every job: a fresh 1 MiB object per read costs
# more (allocation and page faults) than the copy out of the pipe, and one per
# job would cost 1 MiB of RSS per running job. Sharing it is safe because the
# launcher relays in one thread and each read is written out before the next.
_BUFFER = bytearray(READ_SIZE)
_VIEW = memoryview(_BUFFER)


class LogRelay:
    """Appends one framed record per pipe read; past `max_bytes` of output it
    writes one SYSTEM record and discards the rest (the job keeps running)."""

    def __init__(self, log_path: str, max_bytes: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(log_path, flags, 0o640)
        self._max = max_bytes
        self.written = 0
        self.truncated = False

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
        # Header and output go out in one writev, so a record lands whole
        # (O_APPEND) and the output is never copied into a joined record.
        header = HEADER.pack(stream, time.time_ns(), len(data))
        parts = [memoryview(header), memoryview(data)]
        while parts:
            sent = os.writev(self._fd, parts)
            parts = _after(parts, sent)
        if count:
            self.written += len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _after(parts: list[memoryview], sent: int) -> list[memoryview]:
    """What is left of `parts` once `sent` bytes of them were written."""
    while parts and sent >= len(parts[0]):
        sent -= len(parts[0])
        parts = parts[1:]
    if parts and sent:
        parts = [parts[0][sent:], *parts[1:]]
    return parts
