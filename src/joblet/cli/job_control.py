"""`rnx stop`, `rnx kill` and `rnx wait`: ending jobs and waiting for them."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from joblet.cli.context import CommandContext
from joblet.cli.job_view import FINAL_STATUSES, job_exit_code

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb
    from joblet.client.connection import JobClient

JOB_HELP = "job ID, a unique prefix of one, or a job name"
WAIT_POLL_MIN_S = 0.05
WAIT_POLL_MAX_S = 1.0


def stop(ctx: CommandContext) -> int:
    args = ctx.args
    with ctx.job_client() as client:
        for uuid in args.uuids:
            res = client.stop_job(uuid, signal=args.signal, grace_seconds=args.time)
            _print_stopped(ctx, res)
    return 0


def kill(ctx: CommandContext) -> int:
    """`rnx kill`: the signal and nothing more, like `docker kill`."""
    args = ctx.args
    with ctx.job_client() as client:
        for uuid in args.uuids:
            res = client.stop_job(uuid, signal=args.signal, signal_only=True)
            _print_stopped(ctx, res)
    return 0


def _print_stopped(ctx: CommandContext, res: pb.StopJobRes) -> None:
    if ctx.json:
        ctx.print_json(res)
        return
    ctx.print(f"Job ID: {res.uuid}\nStatus: {res.status}")
    if res.status in FINAL_STATUSES:
        ctx.print(f"Exit Code: {res.exitCode}")


def wait(ctx: CommandContext) -> int:
    """Wait for each job to end, print its exit code; exit with the first
    non-zero one (or 0), so `rnx wait ID && ...` reads as it does in a shell."""
    codes = []
    with ctx.job_client() as client:
        for uuid in ctx.args.uuids:
            final = wait_for_end(client, uuid)
            code = job_exit_code(final.status, final.exitCode, final.endReason)
            codes.append(code)
            if ctx.json:
                ctx.print_json(final)
            else:
                ctx.print(str(code), flush=True)
    return next((code for code in codes if code), 0)


def wait_for_end(
    client: JobClient, uuid: str, sleep: Callable[[float], None] = time.sleep
) -> pb.GetJobStatusRes:
    """Poll until the job is final, backing off from 50 ms to 1 s."""
    pause = WAIT_POLL_MIN_S
    while True:
        status = client.get_job_status(uuid)
        if status.status in FINAL_STATUSES:
            return status
        sleep(pause)
        pause = min(pause * 2, WAIT_POLL_MAX_S)


def add_uuids(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uuids", metavar="JOB", nargs="+", help=JOB_HELP)


def add_stop_arguments(parser: argparse.ArgumentParser) -> None:
    from joblet.cli.units import grace_seconds

    add_uuids(parser)
    parser.add_argument(
        "-t",
        "--time",
        type=grace_seconds,
        default=0,
        metavar="DURATION",
        help='grace period before the kill, e.g. "10" or "30s" (default: the node\'s)',
    )
    parser.add_argument(
        "-s", "--signal", default="", metavar="SIGNAL", help="signal to send first (default TERM)"
    )


def add_kill_arguments(parser: argparse.ArgumentParser) -> None:
    add_uuids(parser)
    parser.add_argument(
        "-s", "--signal", default="KILL", metavar="SIGNAL", help="signal to send (default KILL)"
    )
