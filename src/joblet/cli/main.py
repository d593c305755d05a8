"""The `rnx` entry point: parse, dispatch, and turn every failure into one line.

Start-up is kept cheap (a CLI people run all day): grpc, protobuf and yaml are
imported only by the commands that need them, a command's module only when it
runs, and the parts of grpc a synchronous client never uses not at all
(`joblet.deferred`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from joblet.cli.commands import ALIASES, HIDDEN, JOB_ACTIONS, SHORTCUTS, TOP_LEVEL
from joblet.cli.parser import RnxArgumentParser, add_global_options, add_lazy_subparsers
from joblet.cli.terminal import escape_text
from joblet.client.errors import EXIT_FAILURE, EXIT_INTERRUPTED, CliError
from joblet.deferred import UNUSED_BY_SYNC_CLIENT, defer_imports

if TYPE_CHECKING:
    from joblet.cli.parser import LazySubParsersAction as Subparsers
    from joblet.client.connection import ChannelFactory

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
DEBUG_ENV = "RNX_DEBUG"  # set to show tracebacks of unexpected errors

Parents = list[RnxArgumentParser]


def build_parser() -> RnxArgumentParser:
    """The whole command tree; a command's arguments (and its module) are
    added only when that command is parsed."""
    parser = RnxArgumentParser(prog="rnx", description="Run and watch jobs on a joblet daemon.")
    add_global_options(parser, None)
    parser.add_argument(
        "--version", action="store_true", help="print the versions of rnx and the daemon"
    )
    parser.set_defaults(json=False, json_compat=False)
    # The same options after the command (`rnx job list --json`); SUPPRESS keeps
    # a value given before the command when it is not repeated after it.
    common = RnxArgumentParser(add_help=False)
    add_global_options(common, argparse.SUPPRESS)
    parents = [common]

    commands = add_lazy_subparsers(parser, "COMMAND")
    for name, help_text in TOP_LEVEL.items():
        fill = partial(_TOP_LEVEL_FILLERS[name], parents)
        commands.add_lazy_parser(name, fill, help=help_text, parents=parents)
    for name in SHORTCUTS:
        _add_job_action(commands, name, parents)
    for name in HIDDEN:  # no help=: argparse then leaves it out of `rnx --help`
        commands.add_lazy_parser(name, partial(_TOP_LEVEL_FILLERS[name], parents), parents=parents)
    return parser


def _add_job_action(commands: Subparsers, name: str, parents: Parents) -> None:
    help_text = JOB_ACTIONS[name]
    fill = partial(_fill_job_action, name)
    commands.add_lazy_parser(
        name,
        fill,
        aliases=ALIASES.get(name, ()),
        help=help_text,
        description=help_text,
        parents=parents,
    )


def _fill_job(parents: Parents, parser: RnxArgumentParser) -> None:
    actions = add_lazy_subparsers(parser, "ACTION")
    for name in JOB_ACTIONS:
        _add_job_action(actions, name, parents)


def _fill_job_action(name: str, parser: RnxArgumentParser) -> None:
    if name == "metrics":
        from joblet.cli import metrics

        metrics.add_arguments(parser)
        return
    from joblet.cli import job
    from joblet.cli.examples import add_examples

    job.add_action_arguments(name, parser)
    add_examples(name, parser)


def _fill_nodes(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import nodes

    nodes.add_arguments(parser)


def _fill_network(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import network

    network.add_actions(parser, parents)


def _fill_volume(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import volume

    volume.add_actions(parser, parents)


def _fill_workflow(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import workflow

    workflow.add_actions(parser, parents)


def _fill_runtime(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import runtime

    runtime.add_actions(parser, parents)


def _fill_gpu(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import gpu

    gpu.add_actions(parser, parents)


def _fill_monitor(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import monitor

    monitor.add_actions(parser, parents)


def _fill_ui(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import ui

    ui.add_arguments(parser)


def _fill_version(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import version

    parser.set_defaults(handler=version.show)


def _fill_completion(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import completion

    completion.add_arguments(parser)


def _fill_complete_words(parents: Parents, parser: RnxArgumentParser) -> None:
    from joblet.cli import complete_words

    complete_words.add_arguments(parser)


_TOP_LEVEL_FILLERS: dict[str, Callable[[Parents, RnxArgumentParser], None]] = {
    "job": _fill_job,
    "nodes": _fill_nodes,
    "network": _fill_network,
    "volume": _fill_volume,
    "workflow": _fill_workflow,
    "runtime": _fill_runtime,
    "gpu": _fill_gpu,
    "monitor": _fill_monitor,
    "ui": _fill_ui,
    "version": _fill_version,
    "completion": _fill_completion,
    "__complete": _fill_complete_words,
}


def main(
    argv: Sequence[str] | None = None, *, channel_factory: ChannelFactory | None = None
) -> int:
    """Run one rnx command; returns the process exit code."""
    # grpc's C core logs handshake failures itself; we report them in one line.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    defer_imports(UNUSED_BY_SYNC_CLIENT)  # before anything imports grpc or protobuf
    as_json = _wants_json(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        as_json = bool(args.json or args.json_compat)
        if args.version:
            from joblet.cli import version

            args.handler = version.show
        from joblet.cli.context import CommandContext

        ctx = CommandContext(
            args, sys.stdout, sys.stderr, os.environ, Path.cwd(), Path.home(), channel_factory
        )
        code: int = args.handler(ctx)
        sys.stdout.flush()  # surface a broken pipe here, not at interpreter exit
        return code
    except CliError as exc:
        return _report(exc.message, exc.exit_code, exc.code if as_json else "")
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
        message = f"unexpected {type(exc).__name__}: {exc}"
        return _report(message, EXIT_FAILURE, "INTERNAL" if as_json else "")


def _wants_json(argv: Sequence[str]) -> bool:
    """--json or --json-compat among rnx's own options (a job's come after `--`
    or its command; a usage error may come before argparse could say)."""
    for token in argv:
        if token == "--":
            return False
        if token in ("--json", "--json-compat"):
            return True
    return False


def _report(message: str, exit_code: int, json_code: str = "") -> int:
    """The one line on stderr; with `json_code`, as `{"error": {...}}`."""
    if json_code:
        import json

        line = json.dumps({"error": {"code": json_code, "message": message}})
    else:
        line = f"rnx: error: {escape_text(message)}"
    with contextlib.suppress(OSError):  # stderr gone too: the exit code is all that is left
        print(line, file=sys.stderr, flush=True)
    return exit_code


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
