"""`rnx job ...`: run, list, status, log, stop, cancel, delete, delete-all.

Handlers are thin: call the client, then render with `job_view` or as JSON.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from joblet.cli.context import CommandContext, Handler
from joblet.cli.job_view import (
    FINAL_STATUSES,
    job_exit_code,
    render_job_table,
    render_run,
    render_status,
)
from joblet.cli.output import write_bytes
from joblet.cli.terminal import LogFilter, escape_text
from joblet.client.errors import CliError

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb
    from joblet.client.connection import JobClient

# After the log stream closes the daemon may take a moment to record the end.
FINAL_STATUS_WAIT_S = 5.0
FINAL_STATUS_POLL_S = 0.05


def run(ctx: CommandContext) -> int:
    from joblet.cli import run_uploads, stdin_feed
    from joblet.cli.job_args import split_command_line

    args = ctx.args
    split_command_line(args.command_line)  # a usage error before reading any upload
    entries = run_uploads.scan(ctx)
    if not args.interactive:
        stdin_feed.warn_if_piped(ctx)
    with ctx.job_client() as client:
        res = client.run_job(run_uploads.run_request(ctx, client, entries))
        if args.interactive:
            stdin_feed.start(ctx, client, res.jobUuid)
            args.follow = True
        if ctx.json:
            ctx.print_json(res)
        else:
            # With --follow stdout carries only the job's output, like `docker run`.
            stream = ctx.err if args.follow else ctx.out
            print(escape_text("\n".join(render_run(res))), file=stream, flush=True)
        return follow(ctx, client, res.jobUuid) if args.follow else 0


def follow(ctx: CommandContext, client: JobClient, uuid: str) -> int:
    """Stream the job's output, then exit with its own exit code."""
    stream_logs(ctx, client, uuid)
    final = wait_until_final(client, uuid)
    if ctx.json:
        ctx.print_json(final)
    return job_exit_code(final.status, final.exitCode)


def wait_until_final(
    client: JobClient,
    uuid: str,
    timeout_s: float = FINAL_STATUS_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> pb.GetJobStatusRes:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get_job_status(uuid)
        if status.status in FINAL_STATUSES:
            return status
        if time.monotonic() >= deadline:
            raise CliError(f"job {uuid} is still {status.status} after its output ended")
        sleep(FINAL_STATUS_POLL_S)


def stream_logs(ctx: CommandContext, client: JobClient, uuid: str) -> None:
    if ctx.json:
        for chunk in client.get_job_logs(uuid):
            ctx.print_json(chunk)
        return
    write_output(ctx, client.get_job_output(uuid), raw=False)


def write_output(ctx: CommandContext, outputs: Iterable[bytes | memoryview], *, raw: bool) -> None:
    """A job's output to stdout. To a terminal, unless `raw`, escape sequences
    other than colours are shown rather than obeyed; to a pipe or a file the
    bytes go through as they are."""
    isatty = getattr(ctx.out, "isatty", None)
    if raw or not (isatty and isatty()):
        for output in outputs:
            write_bytes(ctx.out, output)
        return
    log_filter = LogFilter()
    for output in outputs:
        write_bytes(ctx.out, log_filter.feed(output))
    write_bytes(ctx.out, log_filter.finish())


def log(ctx: CommandContext) -> int:
    args = ctx.args
    options = {
        "tail": args.tail,
        "since": args.since,
        "stream": args.stream or "",
        "no_follow": args.no_follow,
    }
    with ctx.job_client() as client:
        if ctx.json:
            for chunk in client.get_job_logs(args.uuid, **options):
                ctx.print_json(chunk)
        else:
            write_output(ctx, client.get_job_output(args.uuid, **options), raw=args.raw)
    return 0


def _add_log_arguments(parser: argparse.ArgumentParser) -> None:
    _add_uuid(parser)
    parser.add_argument("--tail", type=int, default=0, metavar="N", help="only the last N lines")
    parser.add_argument(
        "--since", default="", metavar="WHEN", help='output since an RFC3339 time or for "10m"'
    )
    parser.add_argument("--stream", choices=["stdout", "stderr"], help="one stream only")
    parser.add_argument("--no-follow", action="store_true", help="print the output so far and exit")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="pass escape sequences to the terminal as the job wrote them (default: colours only)",
    )


def status(ctx: CommandContext) -> int:
    with ctx.job_client() as client:
        res = client.get_job_status(ctx.args.uuid)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print("\n".join(render_status(res, datetime.now(UTC))))
    return 0


def list_jobs(ctx: CommandContext) -> int:
    with ctx.job_client() as client:
        res = client.list_jobs()
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(render_job_table(res.jobs, datetime.now(UTC)))
    return 0


def stop(ctx: CommandContext) -> int:
    with ctx.job_client() as client:
        res = client.stop_job(ctx.args.uuid)
    if ctx.json:
        ctx.print_json(res)
        return 0
    ctx.print(f"Job ID: {res.uuid}\nStatus: {res.status}")
    if res.status in FINAL_STATUSES:
        ctx.print(f"Exit Code: {res.exitCode}")
    return 0


def cancel(ctx: CommandContext) -> int:
    with ctx.job_client() as client:
        res = client.cancel_job(ctx.args.uuid)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(f"Job ID: {res.uuid}\nStatus: {res.status}")
    return 0


def delete(ctx: CommandContext) -> int:
    with ctx.job_client() as client:
        res = client.delete_job(ctx.args.uuid)
    if ctx.json:
        ctx.print_json(res)
        return 0 if res.success else 1
    if not res.success:
        raise CliError(res.message or f"job {res.uuid} was not deleted")
    ctx.print(res.message or f"Deleted job {res.uuid}")
    return 0


def delete_all(ctx: CommandContext) -> int:
    with ctx.job_client() as client:
        res = client.delete_all_jobs()
    if ctx.json:
        ctx.print_json(res)
        return 0 if res.success else 1
    if res.message:
        ctx.print(res.message)
    ctx.print(f"Deleted: {res.deleted_count}, skipped (still running): {res.skipped_count}")
    return 0 if res.success else 1


def _add_uuid(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uuid", metavar="JOB_ID", help="job ID (a unique prefix is enough)")


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    from joblet.cli.job_args import add_run_arguments

    add_run_arguments(parser)


# name -> (handler, how to add its arguments); the help lines are in `commands`.
ACTIONS: dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None]]] = {
    "run": (run, _add_run_arguments),
    "list": (list_jobs, _no_arguments),
    "status": (status, _add_uuid),
    "log": (log, _add_log_arguments),
    "stop": (stop, _add_uuid),
    "cancel": (cancel, _add_uuid),
    "delete": (delete, _add_uuid),
    "delete-all": (delete_all, _no_arguments),
}


def add_action_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Fill the parser of job action `name` (also used for its top-level shortcut)."""
    handler, add_arguments = ACTIONS[name]
    add_arguments(parser)
    parser.set_defaults(handler=handler)
