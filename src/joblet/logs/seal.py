"""End a job's log whose writer died mid-job.

The launcher appends a job's records; when it is killed, the job's pipes die
with it and nothing more can be recorded. What it wrote stays. A kill can land
inside a write, leaving a record cut short at the end of the file, which
readers would wait on forever; sealing cuts that piece off and appends one
SYSTEM record that says why the output stops there.
"""

from __future__ import annotations

import errno
import logging
import os
import time

from joblet.logs.format import HEADER, Stream, encode_record

log = logging.getLogger(__name__)

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def whole_records_end(fd: int, size: int) -> int:
    """The offset just past the last whole record among the first `size` bytes."""
    pos = 0
    while size - pos >= HEADER.size:
        header = os.pread(fd, HEADER.size, pos)
        if len(header) < HEADER.size:
            break
        end = pos + HEADER.size + HEADER.unpack(header)[2]
        if end > size:
            break
        pos = end
    return pos


def seal(path: str, note: bytes) -> None:
    """Cut a partial trailing record from the log at `path` and append `note`
    as a SYSTEM record. Nothing to do when the file is gone (already copied to
    persist); without room for the note the log still ends on a whole record."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        end = whole_records_end(fd, size)
        if end < size:
            log.info(
                "log %s: cut %d bytes of a record its writer left unfinished", path, size - end
            )
            os.ftruncate(fd, end)
        record = encode_record(Stream.SYSTEM, time.time_ns(), note)
        try:
            written = os.pwrite(fd, record, end)
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                raise
            written = 0
        if written < len(record):
            os.ftruncate(fd, end)  # a record written in part would read as damage
    finally:
        os.close(fd)
