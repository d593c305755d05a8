"""`rnx run -i`: rnx's stdin into the job's, and the warning when it is not asked for."""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from joblet.client.errors import CliError

if TYPE_CHECKING:
    from joblet.cli.context import CommandContext
    from joblet.client.connection import JobClient

READ_BYTES = 64 * 1024


def stdin_is_piped(fd: int = 0) -> bool:
    """Whether `fd` is a pipe or a file: input someone meant for the job."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


def warn_if_piped(ctx: CommandContext, fd: int = 0) -> None:
    if stdin_is_piped(fd):
        print(
            "rnx: warning: input piped into rnx run is not read; use rnx run -i to send it"
            " to the job's stdin",
            file=ctx.err,
            flush=True,
        )


def read_chunks(fd: int = 0) -> Iterator[bytes]:
    """What arrives on `fd` as it arrives, until EOF."""
    while data := os.read(fd, READ_BYTES):
        yield data


def start(ctx: CommandContext, client: JobClient, uuid: str) -> threading.Thread:
    """Feed stdin to the job in the background; a daemon thread, so a job that
    ends before stdin does (a terminal never ends by itself) does not hold rnx."""

    def feed() -> None:
        try:
            client.write_stdin(uuid, read_chunks(sys.stdin.fileno()))
        except CliError as exc:
            print(f"rnx: stdin: {exc}", file=ctx.err, flush=True)

    thread = threading.Thread(target=feed, name="rnx-stdin", daemon=True)
    thread.start()
    return thread
