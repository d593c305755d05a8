"""`rnx workflow logs`: every job's output, each line prefixed `[JOB] `.

Without --follow, the output so far of each job that started, job after job
in the workflow's order. With --follow, one reader thread per started job
(the sync gRPC client blocks per stream) feeds a queue that the main thread
prints line by line, so lines of different jobs never interleave within a
line; a watch of the workflow starts readers for jobs as they start, and the
command ends when the workflow has ended and every reader has drained.
"""

from __future__ import annotations

import codecs
import queue
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from joblet.cli.terminal import escape_field, neutralize_log_text

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb
    from joblet.cli.context import CommandContext
    from joblet.client.connection import JobClient

HAS_RUN = frozenset({"RUNNING", "COMPLETED", "FAILED", "STOPPED"})


def has_output(job: pb.WorkflowJob) -> bool:
    """A job that started (a PENDING or canceled one has no output to read)."""
    return bool(job.jobUuid) and (job.status in HAS_RUN or job.startTime.seconds > 0)


@dataclass
class LinePrinter:
    """Cuts each job's bytes into lines and prints them with the job's prefix."""

    ctx: CommandContext
    tty: bool
    pending: dict[str, str] = field(default_factory=dict)
    decoders: dict[str, codecs.IncrementalDecoder] = field(default_factory=dict)

    def feed(self, name: str, data: bytes | memoryview) -> None:
        decoder = self.decoders.setdefault(
            name, codecs.getincrementaldecoder("utf-8")(errors="replace")
        )
        text = self.pending.get(name, "") + decoder.decode(bytes(data))
        *lines, rest = text.split("\n")
        self.pending[name] = rest
        for line in lines:
            self._write(name, line)

    def finish(self, name: str) -> None:
        rest = self.pending.pop(name, "")
        if rest:
            self._write(name, rest)

    def _write(self, name: str, line: str) -> None:
        shown = neutralize_log_text(line) if self.tty else line
        self.ctx.out.write(f"[{escape_field(name)}] {shown}\n")
        self.ctx.out.flush()


def print_logs(ctx: CommandContext, client: JobClient, uuid: str, *, follow: bool) -> None:
    isatty = getattr(ctx.out, "isatty", None)
    printer = LinePrinter(ctx, bool(isatty and isatty()))
    if not follow:
        for job in client.get_workflow_status(uuid).jobs:
            if has_output(job):
                for chunk in client.get_job_output(job.jobUuid, no_follow=True):
                    printer.feed(job.jobName, chunk)
                printer.finish(job.jobName)
        return
    _Follower(client, printer).run(uuid)


Item = tuple[str, bytes | None] | BaseException


class _Follower:
    def __init__(self, client: JobClient, printer: LinePrinter) -> None:
        self.client = client
        self.printer = printer
        self.items: queue.Queue[Item] = queue.Queue()
        self.readers: set[str] = set()
        # Streams not yet ended: the watch and each reader. A reader is counted
        # by the watch thread before the watch can report its own end, so the
        # count reaches 0 only once everything has been printed.
        self.open = 1
        self.lock = threading.Lock()

    def run(self, uuid: str) -> None:
        threading.Thread(target=self._watch, args=(uuid,), daemon=True).start()
        while True:
            item = self.items.get()
            if isinstance(item, BaseException):
                raise item
            name, data = item
            if data is not None:
                self.printer.feed(name, data)
                continue
            if name:
                self.printer.finish(name)
            with self.lock:
                self.open -= 1
                if self.open == 0:
                    return

    def _watch(self, uuid: str) -> None:
        try:
            for res in self.client.watch_workflow(uuid):
                for job in res.jobs:
                    if has_output(job) and job.jobName not in self.readers:
                        self._start_reader(job.jobName, job.jobUuid)
        except Exception as exc:  # CliError included: raised again by run()
            self.items.put(exc)
            return
        self.items.put(("", None))

    def _start_reader(self, name: str, job_uuid: str) -> None:
        self.readers.add(name)
        with self.lock:
            self.open += 1
        thread = threading.Thread(target=self._read, args=(name, job_uuid), daemon=True)
        thread.start()

    def _read(self, name: str, job_uuid: str) -> None:
        try:
            for chunk in self.client.get_job_output(job_uuid):
                self.items.put((name, bytes(chunk)))
        except Exception as exc:
            self.items.put(exc)
            return
        self.items.put((name, None))
