"""`rnx job ...`: run, list, status, log, stop, cancel, delete, delete-all.

Handlers are thin: call the client, then render with `job_view` or as JSON.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from joblet.cli.context import CommandContext, Handler
from joblet.cli.interrupt import DETACH_WINDOW_S, Detached, forwarding_interrupts
from joblet.cli.job_control import (
    JOB_HELP,
    add_kill_arguments,
    add_stop_arguments,
    add_uuids,
    kill,
    stop,
    wait,
)
from joblet.cli.job_end import end_line, launch_exit_code, launch_failed, succeeded
from joblet.cli.job_view import FINAL_STATUSES, job_exit_code, render_run, render_status
from joblet.cli.output import log_chunk_json, write_bytes
from joblet.cli.terminal import LogFilter, escape_text
from joblet.client.errors import EXIT_INTERRUPTED, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb
    from joblet.cli.job_list import JobFilter
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
        request = run_uploads.run_request(ctx, client, entries)
        res = client.run_job(request)
        if args.interactive:
            stdin_feed.start(ctx, client, res.jobUuid)
            args.follow = True
        if ctx.json_compat:
            from joblet.cli.json_compat import run_json

            counts = (len(entries), len(request.environment))
            shown = run_json(res, args.schedule, *counts, len(request.secret_environment))
            print(shown, file=ctx.out, flush=True)
        elif ctx.json:
            ctx.print_json(res)
        else:
            # With --follow stdout carries only the job's output, like `docker run`.
            stream = ctx.err if args.follow else ctx.out
            print(escape_text("\n".join(render_run(res))), file=stream, flush=True)
        if launch_failed(res.status, res.endReason):
            if not ctx.json:  # under --json the answer above carries the reason
                ctx.report(end_line(res.jobUuid, res.status, res.endReason))
            return launch_exit_code(res.endReason)
        return follow(ctx, client, res.jobUuid) if args.follow else 0


def follow(ctx: CommandContext, client: JobClient, uuid: str) -> int:
    """Stream the job's output, then exit with its own exit code."""
    try:
        with forwarding_interrupts(partial(_forward_sigint, ctx, client, uuid)):
            stream_logs(ctx, client, uuid)
    except Detached:
        ctx.report(
            f"detached from job {uuid}, which goes on running; follow it with"
            f" 'rnx log -f {uuid}', stop it with 'rnx stop {uuid}'"
        )
        return EXIT_INTERRUPTED
    final = wait_until_final(client, uuid)
    if ctx.json:
        ctx.print_json(final)
    elif not succeeded(final.status, final.exitCode):
        ctx.report(end_line(uuid, final.status, final.endReason))
    return job_exit_code(final.status, final.exitCode, final.endReason)


def _forward_sigint(ctx: CommandContext, client: JobClient, uuid: str) -> None:
    """Runs in a thread of its own when Ctrl-C is pressed while following."""
    try:
        client.stop_job(uuid, signal="INT", signal_only=True)
    except CliError as exc:
        ctx.report(f"could not forward SIGINT to job {uuid}: {exc.message}")
        return
    ctx.report(
        f"sent SIGINT to job {uuid}; press Ctrl-C again within"
        f" {DETACH_WINDOW_S:g}s to detach (the job goes on running)"
    )


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
        write_json_lines(ctx, client.get_job_output(uuid))
        return
    write_output(ctx, client.get_job_output(uuid), raw=False)


def write_json_lines(ctx: CommandContext, outputs: Iterable[bytes | memoryview]) -> None:
    """Each chunk of output as one JSON line, rnx's shape or the reference's."""
    if ctx.json_compat:
        from joblet.cli.json_compat import log_line

        for output in outputs:
            print(log_line(output, datetime.now(UTC)), file=ctx.out, flush=True)
        return
    for output in outputs:
        print(log_chunk_json(output), file=ctx.out, flush=True)


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
        "timestamps": args.timestamps,
    }
    from joblet.cli.many_jobs import resolve_job

    found = resolve_job(ctx)
    ctx, uuid = found.ctx, found.ctx.args.uuid
    with ctx.job_client() as client:
        if ctx.json:
            write_json_lines(ctx, client.get_job_output(uuid, **options))
        else:
            write_output(ctx, client.get_job_output(uuid, **options), raw=args.raw)
    return found.exit_code


def _add_log_arguments(parser: argparse.ArgumentParser) -> None:
    _add_uuid(parser)
    parser.add_argument(
        "-n", "--tail", type=_line_count, default=0, metavar="N", help="only the last N lines"
    )
    parser.add_argument(
        "--since", default="", metavar="WHEN", help='output since an RFC3339 time or for "10m"'
    )
    parser.add_argument("--stream", choices=["stdout", "stderr"], help="one stream only")
    follow = parser.add_mutually_exclusive_group()
    follow.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing output until the job ends (the default)",
    )
    follow.add_argument("--no-follow", action="store_true", help="print the output so far and exit")
    parser.add_argument(
        "-t",
        "--timestamps",
        action="store_true",
        help="start each line with the time it was written (RFC 3339, UTC)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="pass escape sequences to the terminal as the job wrote them (default: colours only)",
    )


def _line_count(text: str) -> int:
    from joblet.cli.job_args import non_negative_int

    return non_negative_int(text)


def status(ctx: CommandContext) -> int:
    from joblet.cli.many_jobs import resolve_job

    found = resolve_job(ctx)
    if found.status is None:
        with ctx.job_client() as client:
            res = client.get_job_status(ctx.args.uuid)
    else:
        res = found.status
    if ctx.json_compat:
        from joblet.cli.json_compat import status_json

        print(_with_node(status_json(res), found.node), file=ctx.out, flush=True)
    elif ctx.json:
        from joblet.cli.output import message_to_json

        print(_with_node(message_to_json(res), found.node), file=ctx.out, flush=True)
    else:
        lines = render_status(res, datetime.now(UTC))
        ctx.print("\n".join([f"Node: {found.node}", *lines] if found.node else lines))
    return found.exit_code


def _with_node(text: str, node: str) -> str:
    """A JSON object's text with "node" first, when the job was looked for
    on several nodes."""
    if not node:
        return text
    import json

    return json.dumps({"node": node, **json.loads(text)})


def list_jobs(ctx: CommandContext) -> int:
    from joblet.cli.job_list import format_rows, render_list

    args = ctx.args
    now = datetime.now(UTC)
    wanted = _job_filter(args, now)
    if ctx.many_nodes:
        from joblet.cli.many_jobs import list_many

        return list_many(ctx, wanted, now, _width(ctx))
    from joblet.cli.many_jobs import fetch_jobs, list_note

    with ctx.job_client() as client:
        fetched = fetch_jobs(client, wanted)
    jobs, note = fetched.jobs, list_note(len(fetched.jobs), fetched.more, fetched.omitted)
    if note and not ctx.json:
        ctx.report(note)
    if ctx.json_compat:
        from joblet.cli.json_compat import list_json

        print(list_json(jobs), file=ctx.out, flush=True)
    elif ctx.json:
        from joblet.api import joblet_pb2 as pb

        ctx.print_json(pb.Jobs(jobs=jobs))
    elif args.quiet:
        for job in jobs:
            ctx.print(job.uuid)
    elif args.format:
        if jobs:
            ctx.print(format_rows(jobs, args.format))
    else:
        ctx.print(render_list(jobs, now, _width(ctx), full=args.no_trunc))
    return 0


def _job_filter(args: argparse.Namespace, now: datetime) -> JobFilter:
    from joblet.cli.job_list import DEFAULT_LIMIT, JobFilter, since_time

    since = None
    if args.since:
        try:
            since = since_time(args.since, now)
        except ValueError as exc:
            raise CliError(f"--since: {exc}", EXIT_USAGE) from None
    statuses = frozenset(s.strip().upper() for s in args.status.split(",") if s.strip())
    limit = 0 if args.all else (DEFAULT_LIMIT if args.limit is None else args.limit)
    return JobFilter(statuses=statuses, name=args.name, since=since, limit=limit)


def _width(ctx: CommandContext) -> int:
    """The terminal's width; 80 when output goes elsewhere."""
    isatty = getattr(ctx.out, "isatty", None)
    if isatty and isatty():
        import shutil

        return shutil.get_terminal_size().columns
    return 80


def _add_list_arguments(parser: argparse.ArgumentParser) -> None:
    from joblet.cli.job_args import non_negative_int
    from joblet.cli.job_list import FIELDS, parse_fields

    def fields(text: str) -> list[str]:
        try:
            return parse_fields(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("-q", "--quiet", action="store_true", help="print job ids only")
    shown.add_argument(
        "--format",
        type=fields,
        metavar="FIELDS",
        help=f"print these fields, tab-separated: {','.join(FIELDS)}",
    )
    parser.add_argument(
        "--no-trunc", action="store_true", help="full ids and commands (wider than the terminal)"
    )
    parser.add_argument(
        "--status", default="", metavar="LIST", help="only these statuses, e.g. RUNNING,FAILED"
    )
    parser.add_argument(
        "--name", default="", metavar="GLOB", help='only names matching, e.g. "web*"'
    )
    parser.add_argument(
        "--since", default="", metavar="WHEN", help='created since "10m" ago or an RFC 3339 time'
    )
    many = parser.add_mutually_exclusive_group()
    many.add_argument(
        "--limit",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="the newest N jobs (default 100; 0 = all)",
    )
    many.add_argument("--all", action="store_true", help="every job (no limit)")


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
    parser.add_argument("uuid", metavar="JOB", help=JOB_HELP)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    from joblet.cli.job_args import add_run_arguments

    add_run_arguments(parser)


# name -> (handler, how to add its arguments); the help lines are in `commands`.
ACTIONS: dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None]]] = {
    "run": (run, _add_run_arguments),
    "list": (list_jobs, _add_list_arguments),
    "status": (status, _add_uuid),
    "log": (log, _add_log_arguments),
    "stop": (stop, add_stop_arguments),
    "kill": (kill, add_kill_arguments),
    "wait": (wait, add_uuids),
    "cancel": (cancel, _add_uuid),
    "delete": (delete, _add_uuid),
    "delete-all": (delete_all, _no_arguments),
}


def add_action_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Fill the parser of job action `name` (also used for its top-level shortcut)."""
    handler, add_arguments = ACTIONS[name]
    add_arguments(parser)
    parser.set_defaults(handler=handler)
