"""The flags of `rnx job run` and the RunJobRequest they describe."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from joblet.client.errors import EXIT_USAGE, CliError
from joblet.client.uploads import UploadEntry

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb

_INT32_MAX = 2**31 - 1  # the API's limits are int32
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def key_value(text: str) -> tuple[str, str]:
    """argparse type for `KEY=VALUE` (the value may be empty or hold '=')."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if not _ENV_KEY.fullmatch(key):
        raise argparse.ArgumentTypeError(
            f"invalid variable name {key!r} in {text!r}: use letters, digits and '_',"
            " not starting with a digit"
        )
    return key, value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= _INT32_MAX:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to {_INT32_MAX}, got {value}")
    return value


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "%(prog)s [options] CMD [ARGS...]"
    add = parser.add_argument
    add("--name", default="", help="a name for the job (also its hostname)")
    add(
        "--max-cpu",
        type=non_negative_int,
        default=0,
        metavar="PCT",
        help="CPU limit in percent of one core (100 = one core; 0 = no limit)",
    )
    add(
        "--max-memory",
        type=non_negative_int,
        default=0,
        metavar="MB",
        help="memory limit in MB (0 = no limit)",
    )
    add(
        "--max-iobps",
        type=non_negative_int,
        default=0,
        metavar="BYTES",
        help="IO bandwidth limit in bytes per second (0 = no limit)",
    )
    add("--cpu-cores", default="", metavar="LIST", help='CPUs to run on, e.g. "0-3" or "1,3"')
    add(
        "-e",
        "--env",
        type=key_value,
        action="append",
        default=[],
        metavar="K=V",
        help="environment variable for the job (repeatable)",
    )
    add(
        "-s",
        "--secret-env",
        type=key_value,
        action="append",
        default=[],
        metavar="K=V",
        help="secret environment variable, shown as *** everywhere (repeatable)",
    )
    add("--workdir", default="", help="working directory inside the job")
    add(
        "--upload",
        action="append",
        default=[],
        metavar="PATH",
        help="upload a file into the workspace as its base name (repeatable)",
    )
    add(
        "--upload-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="upload a directory tree into the workspace under its base name (repeatable)",
    )
    add(
        "--schedule",
        default="",
        metavar="WHEN",
        help='run later: a delay ("30s", "5m", "1h30m") or an RFC3339 time',
    )
    add("--network", default="", help="network to attach the job to")
    add(
        "--volume", action="append", default=[], metavar="NAME", help="volume to mount (repeatable)"
    )
    add("--runtime", default="", help="runtime to run the job in")
    add("--gpu", type=non_negative_int, default=0, metavar="N", help="number of GPUs")
    add(
        "--gpu-memory",
        type=non_negative_int,
        default=0,
        metavar="MB",
        help="GPU memory needed per GPU, in MB",
    )
    add(
        "-f",
        "--follow",
        action="store_true",
        help="stream the output and exit with the job's exit code (the job's ID and"
        " status go to stderr)",
    )
    # CMD and everything after it, options included, belong to the job. One
    # REMAINDER positional keeps a `--` among the job's arguments intact (with a
    # separate CMD positional, argparse would drop a `--` right after CMD).
    add(
        "command_line",
        nargs=argparse.REMAINDER,
        metavar="CMD [ARGS...]",
        help="the program to run and its arguments",
    )


def split_command_line(parts: Sequence[str]) -> tuple[str, list[str]]:
    """CMD and ARGS from the remainder; a leading `--` only separates them from rnx flags."""
    if parts and parts[0] == "--":
        parts = parts[1:]
    if not parts:
        raise CliError("missing CMD: rnx job run [flags] CMD [ARGS...]", EXIT_USAGE)
    return parts[0], list(parts[1:])


def build_run_request(args: argparse.Namespace, uploads: list[UploadEntry]) -> pb.RunJobRequest:
    from joblet.api import joblet_pb2 as pb

    command, command_args = split_command_line(args.command_line)
    return pb.RunJobRequest(
        name=args.name,
        command=command,
        args=command_args,
        maxCpu=args.max_cpu,
        cpuCores=args.cpu_cores,
        maxMemory=args.max_memory,
        maxIobps=args.max_iobps,
        uploads=[
            pb.FileUpload(path=u.path, content=u.content, mode=u.mode, isDirectory=u.is_directory)
            for u in uploads
        ],
        schedule=args.schedule,
        network=args.network,
        volumes=args.volume,
        runtime=args.runtime,
        workDir=args.workdir,
        environment=dict(args.env),
        secret_environment=dict(args.secret_env),
        gpu_count=args.gpu,
        gpu_memory_mb=args.gpu_memory,
    )
