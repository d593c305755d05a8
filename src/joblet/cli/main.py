"""The `rnx` entry point: parse, dispatch, and turn every failure into one line.

Start-up is kept cheap (a CLI people run all day): grpc, protobuf and yaml are
imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from joblet.cli import job, metrics, monitor, network, nodes, volume
from joblet.cli.context import CommandContext
from joblet.cli.parser import RnxArgumentParser, add_global_options
from joblet.client.errors import EXIT_FAILURE, CliError

if TYPE_CHECKING:
    from joblet.client.connection import ChannelFactory

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
DEBUG_ENV = "RNX_DEBUG"  # set to show tracebacks of unexpected errors


def build_parser() -> RnxArgumentParser:
    parser = RnxArgumentParser(prog="rnx", description="Run and watch jobs on a joblet daemon.")
    add_global_options(parser, None)
    parser.set_defaults(json=False)
    # The same options after the command (`rnx job list --json`); SUPPRESS keeps
    # a value given before the command when it is not repeated after it.
    common = RnxArgumentParser(add_help=False)
    add_global_options(common, argparse.SUPPRESS)
    parents = [common]

    commands = parser.add_subparsers(metavar="COMMAND", required=True)
    job_parser = commands.add_parser("job", help="run and manage jobs", parents=parents)
    job_actions = job_parser.add_subparsers(metavar="ACTION", required=True)
    job.add_commands(job_actions, parents)
    metrics.add_commands(job_actions, parents)
    nodes.add_commands(commands, parents)
    network.add_commands(commands, parents)
    volume.add_commands(commands, parents)
    monitor.add_commands(commands, parents)
    job.add_commands(commands, parents, job.SHORTCUTS)
    return parser


def main(
    argv: Sequence[str] | None = None, *, channel_factory: ChannelFactory | None = None
) -> int:
    """Run one rnx command; returns the process exit code."""
    # grpc's C core logs handshake failures itself; we report them in one line.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        args = build_parser().parse_args(argv)
        ctx = CommandContext(
            args, sys.stdout, sys.stderr, os.environ, Path.cwd(), Path.home(), channel_factory
        )
        code: int = args.handler(ctx)
        sys.stdout.flush()  # surface a broken pipe here, not at interpreter exit
        return code
    except CliError as exc:
        return _report(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_FAILURE
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            import traceback

            traceback.print_exc()
        return _report(f"unexpected {type(exc).__name__}: {exc}", EXIT_FAILURE)


def _report(message: str, code: int) -> int:
    with contextlib.suppress(OSError):  # stderr gone too: the exit code is all that is left
        print(f"rnx: error: {message}", file=sys.stderr, flush=True)
    return code


def _discard_stdout() -> None:
    """Point stdout's descriptor at /dev/null so that the flush at exit cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # no descriptor behind stdout (captured, replaced): nothing to redirect
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
