"""The flags of `rnx job run` and the RunJobRequest they describe."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from joblet.cli.units import bytes_per_second, gpu_ids, memory_mb, schedule_text
from joblet.client.errors import EXIT_USAGE, CliError
from joblet.client.uploads import UploadEntry
from joblet.cluster.placement import parse_place

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb

_INT32_MAX = 2**31 - 1  # the API's limits are int32
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def key_value(text: str) -> tuple[str, str | None]:
    """argparse type for `KEY=VALUE` (the value may be empty or hold '='), or
    `KEY` alone: its value is taken from rnx's own environment, as docker does."""
    key, sep, value = text.partition("=")
    if not _ENV_KEY.fullmatch(key):
        raise argparse.ArgumentTypeError(
            f"invalid variable name {key!r} in {text!r}: use letters, digits and '_',"
            " not starting with a digit"
        )
    return key, value if sep else None


def read_env_file(path: str) -> list[tuple[str, str | None]]:
    """KEY=VALUE lines of an env file; blank lines and '#' comments skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read env file {path}: {exc}", EXIT_USAGE) from None
    entries = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entries.append(key_value(line.removeprefix("export ")))
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"{path}:{number}: {exc}", EXIT_USAGE) from None
    return entries


def resolve_env(
    entries: Sequence[tuple[str, str | None]], caller_env: Mapping[str, str], flag: str
) -> dict[str, str]:
    """The variables to send; a bare KEY takes its value from `caller_env`."""
    resolved = {}
    for key, value in entries:
        if value is not None:
            resolved[key] = value
        elif key in caller_env:
            resolved[key] = caller_env[key]
        else:
            raise CliError(f"{flag} {key}: {key} is not set in this environment", EXIT_USAGE)
    return resolved


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= _INT32_MAX:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to {_INT32_MAX}, got {value}")
    return value


def place(text: str) -> str:
    """--place: checked here, sent as given."""
    try:
        parse_place(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def priority(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not -1000 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"expected -1000..1000, got {value}")
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
    text(
        "--max-memory",
        type=memory_mb,
        default=0,
        metavar="SIZE",
        help='memory limit: "512M", "2G" (a bare number is MB; 0 = no limit)',
    )
    text(
        "--max-iobps",
        type=bytes_per_second,
        default=0,
        metavar="RATE",
        help='IO limit in bytes per second: "10M", "500K" (0 = no limit)',
    )
    text("--cpu-cores", default="", metavar="LIST", help='CPUs to run on, e.g. "0-3" or "1,3"')
    _repeated(
        parser,
        "-e",
        "--env",
        metavar="K=V",
        help_text="environment variable; K alone takes it from this environment",
        kv=True,
    )
    _repeated(
        parser,
        "-s",
        "--secret-env",
        metavar="K=V",
        kv=True,
        help_text="secret environment variable, shown as *** everywhere",
    )
    _repeated(parser, "--env-file", metavar="FILE", help_text="KEY=VALUE lines to add to -e")
    _repeated(parser, "--secret-file", metavar="FILE", help_text="KEY=VALUE lines to add to -s")
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
        help='run later: a delay ("30s", "10m", "1hour"), a local time ("15:04",'
        ' "2026-01-02 15:04") or an RFC3339 time',
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
    text(
        "--gpu-memory",
        type=memory_mb,
        default=0,
        metavar="SIZE",
        help='GPU memory needed per GPU: "8G" (a bare number is MB)',
    )
    text(
        "--gpu-ids",
        type=gpu_ids,
        default=(),
        metavar="IDS",
        help='pin GPUs by host index or UUID: "0,2" (the job gets exactly these)',
    )
    text(
        "--priority",
        type=priority,
        default=0,
        metavar="N",
        help="-1000..1000 (default 0): waiting jobs start highest first, then oldest",
    )
    text(
        "--place",
        type=place,
        default="",
        metavar="node=ID|label=K=V",
        help="on a cluster that places jobs: pin the job to one node or to nodes with a label"
        " (default: any node with room)",
    )
    text(
        "--retry-on-node-loss",
        action="store_true",
        help="placed: if its node is lost while it runs, run it again elsewhere (not FAILED)",
    )
    text(
        "--preemptible",
        action="store_true",
        help="a job of higher priority may stop this one to take its slot",
    )
    text(
        "--on-preempt",
        choices=("requeue", "stop"),
        default="",
        help="with --preemptible: run again from scratch, same id (requeue, the default)"
        " or stay STOPPED",
    )
    text(
        "--stop-grace",
        default="",
        metavar="DURATION",
        help='SIGTERM to SIGKILL when it is stopped: "10s" (default: the node\'s)',
    )
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


def build_run_request(
    args: argparse.Namespace,
    uploads: list[UploadEntry],
    caller_env: Mapping[str, str],
    now: datetime | None = None,
) -> pb.RunJobRequest:
    from joblet.api import joblet_pb2 as pb

    command, command_args = split_command_line(args.command_line)
    env = [entry for path in args.env_file for entry in read_env_file(path)] + args.env
    secrets = [e for path in args.secret_file for e in read_env_file(path)] + args.secret_env
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
        schedule=_schedule(args.schedule, now or datetime.now(UTC)),
        network=args.network,
        volumes=args.volume,
        runtime=args.runtime,
        workDir=args.workdir,
        environment=resolve_env(env, caller_env, "-e"),
        secret_environment=resolve_env(secrets, caller_env, "-s"),
        gpu_count=args.gpu,
        gpu_memory_mb=args.gpu_memory,
        gpu_ids=list(getattr(args, "gpu_ids", ())),
        user=args.user,
        maxIngressBitsPerSec=_rate("--max-ingress", args.max_ingress),
        maxEgressBitsPerSec=_rate("--max-egress", args.max_egress),
        stdin=bool(getattr(args, "interactive", False)),
        requirements=[requirement(text) for text in getattr(args, "requires", [])],
        priority=getattr(args, "priority", 0),
        preemptible=bool(getattr(args, "preemptible", False)),
        onPreempt=_on_preempt(args),
        stopGracePeriod=getattr(args, "stop_grace", ""),
        place=getattr(args, "place", ""),
        retryOnNodeLoss=bool(getattr(args, "retry_on_node_loss", False)),
    )


def _on_preempt(args: argparse.Namespace) -> str:
    value = str(getattr(args, "on_preempt", "") or "")
    if value and not getattr(args, "preemptible", False):
        raise CliError("--on-preempt needs --preemptible", EXIT_USAGE)
    return value


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


def _schedule(text: str, now: datetime) -> str:
    try:
        return schedule_text(text, now)
    except argparse.ArgumentTypeError as exc:
        raise CliError(f"--schedule: {exc}", EXIT_USAGE) from None


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
