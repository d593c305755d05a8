"""`rnx workflow ...`: run, list, status, stop, delete, logs, validate.

    rnx workflow run FILE [-f]          submit a workflow (and follow it live)
    rnx workflow list [--all]           unfinished workflows (--all: every one)
    rnx workflow status UUID [--detail] [--watch]
    rnx workflow stop UUID              no new starts; running jobs stopped
    rnx workflow delete UUID            a finished workflow and its jobs
    rnx workflow logs UUID [-f]         every job's output, each line prefixed [JOB]
    rnx workflow validate FILE          check a workflow here, without a server

The YAML is checked here with the same validator the server runs, before
anything is sent; files a job lists under `uploads` are read relative to the
YAML file. `run -f` and `status --watch` exit 0 when the workflow ends
COMPLETED, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from joblet.cli.commands import TOP_LEVEL
from joblet.cli.context import CommandContext
from joblet.cli.parser import RnxArgumentParser
from joblet.cli.workflow_view import changes, render_list, render_status
from joblet.client.errors import EXIT_FAILURE, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb
    from joblet.cli.parser import Subparsers
    from joblet.client.connection import JobClient
    from joblet.workflows.model import WorkflowSpec

MAX_FILE_BYTES = 4 * 1024 * 1024  # well above what the validator accepts (1 Mi characters)
CURSOR_UP_AND_CLEAR = "\x1b[{}F\x1b[J"
HOME_AND_CLEAR = "\x1b[H\x1b[J"


def read_workflow(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from exc
    if len(data) > MAX_FILE_BYTES:
        raise CliError(f"{path} is over {MAX_FILE_BYTES:,} bytes: not a workflow", EXIT_USAGE)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text (byte {exc.start})", EXIT_USAGE) from exc


def check_workflow(path: Path, text: str) -> tuple[WorkflowSpec | None, list[str]]:
    """The spec, or the problems: the server's validator, plus uploads that
    are missing next to the YAML file."""
    from joblet.client.workflow_files import missing_uploads
    from joblet.workflows.yamlspec import WorkflowInvalid, parse_workflow

    try:
        spec = parse_workflow(text)
    except WorkflowInvalid as exc:
        return None, [str(p) for p in exc.problems]
    problems = []
    for job in spec.jobs:
        for upload in missing_uploads(path.parent, job.uploads):
            problems.append(f"line {job.line}: jobs.{job.name}.uploads: {upload!r} not found")
    return (None if problems else spec), problems


def _invalid(path: Path, problems: list[str]) -> CliError:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return CliError(f"{path} is invalid ({count}):\n" + "\n".join(problems), EXIT_FAILURE)


def validate(ctx: CommandContext) -> int:
    path = Path(ctx.args.file)
    spec, problems = check_workflow(path, read_workflow(path))
    if ctx.json:
        ctx.out.write(
            json.dumps({"file": str(path), "valid": spec is not None, "problems": problems})
        )
        ctx.out.write("\n")
        return 0 if spec is not None else EXIT_FAILURE
    if spec is None:
        raise _invalid(path, problems)
    ctx.print(f"{path}: valid, {len(spec.jobs)} job{'s' if len(spec.jobs) != 1 else ''}")
    return 0


def run(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb
    from joblet.client.workflow_files import workflow_files

    path = Path(ctx.args.file)
    text = read_workflow(path)
    spec, problems = check_workflow(path, text)
    if spec is None:
        raise _invalid(path, problems)
    files = workflow_files(path.parent, [u for job in spec.jobs for u in job.uploads])
    request = pb.RunWorkflowRequest(
        workflow=path.name,
        totalJobs=len(spec.jobs),
        jobOrder=[job.name for job in spec.jobs],
        yamlContent=text,
        workflowFiles=[
            pb.FileUpload(path=f.path, content=f.content, mode=f.mode, isDirectory=f.is_directory)
            for f in files
        ],
    )
    with ctx.job_client() as client:
        res = client.run_workflow(request)
        if ctx.json:
            ctx.print_json(res)
        else:
            ctx.print(f"Workflow created with UUID: {res.workflowUuid}", flush=True)
        if not ctx.args.follow:
            return 0
        return _exit_code(live(ctx, client, res.workflowUuid))


def _exit_code(last: pb.GetWorkflowStatusResponse | None) -> int:
    return 0 if last is not None and last.workflow.status == "COMPLETED" else EXIT_FAILURE


def live(ctx: CommandContext, client: JobClient, uuid: str) -> pb.GetWorkflowStatusResponse | None:
    """Follow the workflow until it ends: redrawn in place on a terminal, one
    line per status change otherwise (or one JSON message per change)."""
    isatty = getattr(ctx.out, "isatty", None)
    tty = bool(isatty and isatty()) and not ctx.json
    seen: dict[str, str] = {}
    drawn = 0
    last = None
    for res in client.watch_workflow(uuid):
        last = res
        if ctx.json:
            ctx.print_json(res)
        elif tty:
            text = render_status(res, time.time())
            ctx.out.write(_redraw(drawn))  # our own sequence, raw; the text is escaped
            ctx.print(text, flush=True)
            drawn = text.count("\n") + 1
        else:
            for line in changes(seen, res, time.strftime("%H:%M:%S")):
                ctx.print(line, flush=True)
    return last


def _redraw(drawn: int) -> str:
    """What moves the cursor back over the last view: up over its lines, or,
    when it was taller than the terminal (its top scrolled away), home."""
    if not drawn:
        return ""
    if drawn >= shutil.get_terminal_size().lines:
        return HOME_AND_CLEAR
    return CURSOR_UP_AND_CLEAR.format(drawn)


def status(ctx: CommandContext) -> int:
    args = ctx.args
    with ctx.job_client() as client:
        if args.watch:
            return _exit_code(live(ctx, client, args.uuid))
        res = client.get_workflow_status(args.uuid)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(render_status(res, time.time(), detail=args.detail))
    return 0


def list_workflows(ctx: CommandContext) -> int:
    with ctx.job_client() as client:
        res = client.list_workflows(ctx.args.all)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(render_list(list(res.workflows)))
    return 0


def stop(ctx: CommandContext) -> int:
    with ctx.job_client() as client:
        res = client.stop_workflow(ctx.args.uuid)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(
            f"Workflow {res.workflowUuid} stopped: {res.stoppedJobs} running job(s) stopped,"
            f" {res.canceledJobs} pending job(s) canceled (status {res.status})"
        )
    return 0


def delete(ctx: CommandContext) -> int:
    with ctx.job_client() as client:
        res = client.delete_workflow(ctx.args.uuid)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(res.message or f"Workflow {res.workflowUuid} deleted")
    return 0


def logs(ctx: CommandContext) -> int:
    from joblet.cli.workflow_logs import print_logs

    with ctx.job_client() as client:
        print_logs(ctx, client, ctx.args.uuid, follow=ctx.args.follow)
    return 0


def add_commands(subparsers: Subparsers, parents: list[RnxArgumentParser]) -> None:
    """Register `rnx workflow` and its actions."""
    parser = subparsers.add_parser("workflow", help=TOP_LEVEL["workflow"], parents=parents)
    add_actions(parser, parents)


def add_actions(parser: argparse.ArgumentParser, parents: list[RnxArgumentParser]) -> None:
    actions = parser.add_subparsers(metavar="ACTION", required=True)

    def action(name: str, help_text: str, handler: object) -> argparse.ArgumentParser:
        sub = actions.add_parser(
            name, help=help_text, description=__doc__, parents=parents,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        sub.set_defaults(handler=handler)
        return sub

    runner = action("run", "submit a workflow from a YAML file", run)
    runner.add_argument("file", metavar="FILE", help="the workflow's YAML file")
    runner.add_argument("-f", "--follow", action="store_true", help="follow it until it ends")
    listing = action("list", "list workflows", list_workflows)
    listing.add_argument("--all", action="store_true", help="finished workflows too")
    state = action("status", "show a workflow and its jobs", status)
    state.add_argument("uuid", metavar="UUID", help="workflow UUID (or a unique prefix)")
    state.add_argument("--detail", action="store_true", help="also show its YAML (secrets masked)")
    state.add_argument("--watch", action="store_true", help="follow it until it ends")
    for name, help_text, handler in (
        ("stop", "stop a workflow: no new starts, running jobs stopped", stop),
        ("delete", "delete a finished workflow and its jobs", delete),
    ):
        action(name, help_text, handler).add_argument("uuid", metavar="UUID", help="workflow UUID")
    log = action("logs", "print every job's output, lines prefixed [JOB]", logs)
    log.add_argument("uuid", metavar="UUID", help="workflow UUID")
    log.add_argument("-f", "--follow", action="store_true", help="live until the workflow ends")
    check = action("validate", "check a workflow file here, without a server", validate)
    check.add_argument("file", metavar="FILE", help="the workflow's YAML file")
