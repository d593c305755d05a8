"""Copy a job's stdout and stderr pipes into its framed log file."""

from __future__ import annotations

import os
import time

from joblet.logs.format import Stream, encode_record

READ_SIZE = 1024 * 1024  # the pipe holds 1 MiB: one read per fill, not sixteen
TRUNCATED_NOTE = b"output truncated: the job's log reached its size limit\n"


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
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.record(stream, data)
        return True

    def record(self, stream: Stream, data: bytes) -> None:
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

    def _append(self, stream: Stream, data: bytes, count: bool = True) -> None:
        # One write per record keeps records whole for readers tailing the file.
        view = memoryview(encode_record(stream, time.time_ns(), data))
        while view:
            view = view[os.write(self._fd, view) :]
        if count:
            self.written += len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
