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


def _number(parser: argparse.ArgumentParser, flag: str, metavar: str, help_text: str) -> None:
    parser.add_argument(flag, type=non_negative_int, default=0, metavar=metavar, help=help_text)


def _repeated(
    parser: argparse.ArgumentParser, *flags: str, metavar: str, help_text: str, kv: bool = False
) -> None:
    parser.add_argument(
        *flags,
        type=key_value if kv else str,
        action="append",
        default=[],
        metavar=metavar,
        help=f"{help_text} (repeatable)",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "%(prog)s [options] CMD [ARGS...]"
    text = parser.add_argument
    text("--name", default="", help="a name for the job (also its hostname)")
    _number(parser, "--max-cpu", "PCT", "CPU limit, percent of one core (100 = one core)")
    _number(parser, "--max-memory", "MB", "memory limit in MB (0 = no limit)")
    _number(parser, "--max-iobps", "BYTES", "IO limit in bytes per second (0 = no limit)")
    text("--cpu-cores", default="", metavar="LIST", help='CPUs to run on, e.g. "0-3" or "1,3"')
    _repeated(parser, "-e", "--env", metavar="K=V", help_text="environment variable", kv=True)
    _repeated(
        parser,
        "-s",
        "--secret-env",
        metavar="K=V",
        kv=True,
        help_text="secret environment variable, shown as *** everywhere",
    )
    text("--workdir", default="", help="working directory inside the job")
    text(
        "--user",
        default="",
        metavar="USER",
        help='run as this user inside the job: "root", a name, "UID" or "UID:GID"',
    )
    _repeated(parser, "--upload", metavar="PATH", help_text="file to put in the workspace")
    _repeated(
        parser,
        "--upload-dir",
        metavar="DIR",
        help_text="directory tree to put in the workspace under its base name",
    )
    text(
        "--schedule",
        default="",
        metavar="WHEN",
        help='run later: a delay ("30s", "5m", "1h30m") or an RFC3339 time',
    )
    text(
        "--network",
        default="",
        help="bridge, isolated, none, host or a custom network (default: the node's)",
    )
    text("--max-ingress", default="", metavar="RATE", help='into the job: "10mbit", "1gbit"')
    text("--max-egress", default="", metavar="RATE", help="out of the job, same units")
    _repeated(parser, "--volume", metavar="NAME", help_text="volume to mount")
    _repeated(
        parser,
        "--requires",
        metavar="ID[=STATUS]|EXPR",
        help_text="wait PENDING until job ID ends with STATUS (default COMPLETED; FAILED,"
        ' STOPPED, CANCELED, FINISHED = any), or an expression: "ID1=COMPLETED OR'
        ' ID2 IN (FAILED, STOPPED)"; all must hold',
    )
    text("--runtime", default="", help="runtime to run the job in")
    _number(parser, "--gpu", "N", "number of GPUs")
    _number(parser, "--gpu-memory", "MB", "GPU memory needed per GPU, in MB")
    text(
        "-i",
        "--interactive",
        action="store_true",
        help="stream rnx's stdin into the job's stdin (implies --follow)",
    )
    text(
        "-f",
        "--follow",
        action="store_true",
        help="stream output, exit with the job's code (ID, status to stderr)",
    )
    # CMD and everything after it, options included, belong to the job. One
    # REMAINDER positional keeps a `--` among the job's arguments intact (with a
    # separate CMD positional, argparse would drop a `--` right after CMD).
    text(
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
        user=args.user,
        maxIngressBitsPerSec=_rate("--max-ingress", args.max_ingress),
        maxEgressBitsPerSec=_rate("--max-egress", args.max_egress),
        stdin=bool(getattr(args, "interactive", False)),
        requirements=[requirement(text) for text in getattr(args, "requires", [])],
    )


_ID_STATUS = re.compile(r"\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*(?:=\s*([A-Za-z]+)\s*)?")


def requirement(text: str) -> pb.JobRequirement:
    """`ID`, `ID=STATUS`, or an expression over job ids (checked by the server)."""
    from joblet.api import joblet_pb2 as pb
    from joblet.jobs.ids import is_job_id

    match = _ID_STATUS.fullmatch(text)
    if match is not None and is_job_id(match.group(1)):
        return pb.JobRequirement(jobUuid=match.group(1), status=(match.group(2) or "").upper())
    if match is not None:  # a prefix of an id: the server resolves it in an expression
        return pb.JobRequirement(expression=f"{match.group(1)}={match.group(2) or 'COMPLETED'}")
    if not text.strip():
        raise CliError("--requires needs a job ID, ID=STATUS or an expression", EXIT_USAGE)
    return pb.JobRequirement(expression=text.strip())


def _rate(flag: str, text: str) -> int:
    """'10mbit', '1gbit', '500kbit' or a bare number of bit/s; '' = 0 (default)."""
    if not text:
        return 0
    from joblet.errors import InvalidArgument
    from joblet.network.addressing import parse_rate

    try:
        return parse_rate(text)
    except (ValueError, InvalidArgument) as exc:
        raise CliError(f"{flag}: {exc}", EXIT_USAGE) from None
