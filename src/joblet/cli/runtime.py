"""`rnx runtime`: install, list, inspect, test, validate and remove runtimes.

    rnx runtime list
    rnx runtime info NAME
    rnx runtime test NAME
    rnx runtime validate REFERENCE|runtime.yml
    rnx runtime remove NAME
    rnx runtime install NAME|DIR [--force] [--quiet]
    rnx runtime install NAME --repo OWNER/REPO [--branch B] [--path P] [--sha256 H]
    rnx runtime install NAME --url URL [--path P] [--sha256 H]

NAME alone installs ./runtimes/NAME/ (a directory holding runtime.yml). A job
uses a runtime with `rnx job run --runtime NAME`: it is mounted read-only at
/opt/runtime.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from joblet.cli.commands import TOP_LEVEL
from joblet.cli.context import CommandContext
from joblet.cli.interrupt import ctrl_c_raises
from joblet.cli.metrics import call, open_channel, stream
from joblet.cli.output import write_bytes
from joblet.cli.parser import RnxArgumentParser
from joblet.cli.runtime_view import render_info, render_runtimes
from joblet.client.errors import EXIT_USAGE, CliError
from joblet.client.progress_text import ProgressView, human_bytes

if TYPE_CHECKING:
    import grpc

    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc
    from joblet.cli.parser import Subparsers

TIMEOUT_S = 60.0
TEST_TIMEOUT_S = 900.0


def _stub(channel: grpc.Channel) -> pb_grpc.RuntimeServiceStub:
    from joblet.api import joblet_pb2_grpc as pb_grpc

    return pb_grpc.RuntimeServiceStub(channel)  # type: ignore[no-untyped-call]


def list_runtimes(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb

    if ctx.many_nodes:
        from joblet.cli.many_lists import list_many

        def fetch(channel: grpc.Channel, address: str) -> list[pb.RuntimeInfo]:
            req = pb.EmptyRequest()
            return list(call(address, _stub(channel).ListRuntimes, req, timeout=TIMEOUT_S).runtimes)

        return list_many(ctx, fetch, "runtimes", render_runtimes)
    with open_channel(ctx) as (channel, address):
        res = call(address, _stub(channel).ListRuntimes, pb.EmptyRequest(), timeout=TIMEOUT_S)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(render_runtimes(list(res.runtimes)))
    return 0


def runtime_info(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb

    req = pb.RuntimeInfoReq(runtime=ctx.args.name)
    with open_channel(ctx) as (channel, address):
        res = call(address, _stub(channel).GetRuntimeInfo, req, timeout=TIMEOUT_S)
    if ctx.json:
        ctx.print_json(res)
    elif res.found:
        ctx.print(render_info(res.runtime))
    if not res.found:
        raise CliError(f"runtime {ctx.args.name} is not installed")
    return 0


def test_runtime(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb

    req = pb.RuntimeTestReq(runtime=ctx.args.name)
    with open_channel(ctx) as (channel, address):
        res = call(address, _stub(channel).TestRuntime, req, timeout=TEST_TIMEOUT_S)
    if ctx.json:
        ctx.print_json(res)
        return 0 if res.success else 1
    if res.output:
        write_bytes(ctx.out, res.output.encode())
        ctx.out.flush()
    if res.success:
        ctx.print(f"Test passed: {ctx.args.name}")
        return 0
    why = res.error or f"exit code {res.exitCode}"
    raise CliError(f"test of runtime {ctx.args.name} failed: {why}")


def validate_spec(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb

    text = ctx.args.spec
    path = ctx.cwd / text
    if "\n" not in text and path.is_file():
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {path}: {exc}", EXIT_USAGE) from exc
    req = pb.ValidateRuntimeSpecRequest(runtimeSpec=text)
    with open_channel(ctx) as (channel, address):
        res = call(address, _stub(channel).ValidateRuntimeSpec, req, timeout=TIMEOUT_S)
    if ctx.json:
        ctx.print_json(res)
    elif res.valid:
        ctx.print(f"Valid: {res.normalizedSpec}")
    else:
        ctx.print(res.message)
    return 0 if res.valid else 1


def remove_runtime(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb

    req = pb.RuntimeRemoveReq(runtime=ctx.args.name)
    with open_channel(ctx) as (channel, address):
        res = call(address, _stub(channel).RemoveRuntime, req, timeout=TIMEOUT_S)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(f"Runtime {ctx.args.name} removed (freed {human_bytes(res.freedSpaceBytes)})")
    return 0


def install_runtime(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb

    args = ctx.args
    with open_channel(ctx) as (channel, address):
        stub = _stub(channel)
        if args.repo or args.url:
            req: Any = pb.InstallRuntimeRequest(
                runtimeSpec=args.target, repository=args.repo or args.url, branch=args.branch,
                path=args.path, forceReinstall=args.force, sha256=args.sha256,
            )  # fmt: skip
            chunks = stream(address, stub.StreamingInstallRuntimeFromGithub, req)
        else:
            name, files = local_files(ctx, args.target)
            req = pb.InstallRuntimeFromLocalRequest(
                runtimeSpec=name, files=files, forceReinstall=args.force
            )
            chunks = stream(address, stub.StreamingInstallRuntimeFromLocal, req)
        return _follow(ctx, chunks)


def _follow(ctx: CommandContext, chunks: Any) -> int:
    """Draw progress on stderr, the build log on stdout (unless --quiet), then the result."""
    result = None
    view = ProgressView(terminal=ctx.err.isatty())
    job = ""
    try:
        with ctrl_c_raises():
            for chunk in chunks:
                kind = chunk.WhichOneof("chunk_type")
                if kind == "progress":
                    job = chunk.progress.build_job_uuid or job
                    if not ctx.json:
                        print(view.draw(chunk.progress), end="", file=ctx.err, flush=True)
                elif kind == "log" and not ctx.args.quiet and not ctx.json:
                    write_bytes(ctx.out, chunk.log.data)
                    ctx.out.flush()
                elif kind == "result":
                    result = chunk.result
    except KeyboardInterrupt:
        if job:  # leaving does not stop the install: say where it goes on
            print(f"\nrnx: the install goes on as job {job} (rnx job stop {job} ends it)",
                  file=ctx.err, flush=True)  # fmt: skip
        raise
    if result is None:
        raise CliError("the daemon ended the install without a result")
    if ctx.json:
        ctx.print_json(result)
    if not result.success:
        job = f" (build job {result.build_job_uuid})" if result.build_job_uuid else ""
        raise CliError(f"installing runtime {result.runtime_spec} failed{job}: {result.message}")
    if not ctx.json:
        ctx.print(f"Runtime installed: {result.runtime_spec} ({human_bytes(result.size_bytes)})")
    return 0


def local_files(ctx: CommandContext, target: str) -> tuple[str, list[pb.RuntimeFile]]:
    """The directory `target` names (DIR, or ./runtimes/NAME) as RuntimeFiles, with
    the wheels its requirements.txt pins (fetched into rnx's cache if missing)."""
    from joblet.api import joblet_pb2 as pb

    # Imported here: hashing and pip's machinery cost the other commands' start.
    from joblet.cli.runtime_prepare import REQUIREMENTS, prepare

    directory = ctx.cwd / target
    name = ""
    if not (directory / "runtime.yml").is_file():
        directory = ctx.cwd / "runtimes" / target
        name = target
    if not (directory / "runtime.yml").is_file():
        raise CliError(
            f"no runtime.yml in {ctx.cwd / target} or {directory}: give a runtime directory",
            EXIT_USAGE,
        )
    arch = daemon_arch(ctx) if (directory / REQUIREMENTS).is_file() else ""
    files = [
        pb.RuntimeFile(path=entry.path, content=entry.content, executable=bool(entry.mode & 0o111))
        for entry in prepare(directory, ctx.err, arch=arch)
    ]
    return name, files


def daemon_arch(ctx: CommandContext) -> str:
    """The daemon's machine (the wheels must fit it); "" (this machine's) if unknown."""
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc

    try:
        with open_channel(ctx) as (channel, address):
            stub = pb_grpc.MonitoringServiceStub(channel)  # type: ignore[no-untyped-call]
            res = call(address, stub.GetSystemStatus, pb.EmptyRequest(), timeout=TIMEOUT_S)
    except CliError:
        return ""
    return str(res.host.architecture)


def add_actions(runtime: argparse.ArgumentParser, parents: list[RnxArgumentParser]) -> None:
    """The actions of `rnx runtime`."""
    actions = runtime.add_subparsers(metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list installed runtimes", parents=parents)
    listing.set_defaults(handler=list_runtimes)
    for action, handler, text in (
        ("info", runtime_info, "show a runtime"),
        ("test", test_runtime, "run a runtime's own test in a job"),
        ("remove", remove_runtime, "remove a runtime no job uses"),
    ):
        parser = actions.add_parser(action, help=text, parents=parents)
        parser.add_argument("name", metavar="NAME", help="runtime name or LANG:VERSION")
        parser.set_defaults(handler=handler)
    validate = actions.add_parser(
        "validate", help="check a reference or runtime.yml", parents=parents
    )
    validate.add_argument("spec", metavar="SPEC", help="a reference, or a runtime.yml file")
    validate.set_defaults(handler=validate_spec)
    install = actions.add_parser(
        "install", help="build and install a runtime", description=__doc__, parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    install.add_argument("target", metavar="NAME|DIR", help="./runtimes/NAME, or a directory")
    install.add_argument("--force", action="store_true", help="replace an installed runtime")
    install.add_argument("--quiet", action="store_true", help="hide the build log")
    source = install.add_mutually_exclusive_group()
    source.add_argument("--repo", default="", metavar="OWNER/REPO", help="a GitHub repository")
    source.add_argument("--url", default="", metavar="URL", help="an http(s) archive or git URL")
    install.add_argument("--branch", default="", help="the repository's branch (default: main)")
    install.add_argument("--path", default="", help="the directory holding runtime.yml")
    install.add_argument("--sha256", default="", metavar="HEX", help="the archive's sha256")
    install.set_defaults(handler=install_runtime)


def add_commands(subparsers: Subparsers, parents: list[RnxArgumentParser]) -> None:
    add_actions(
        subparsers.add_parser("runtime", help=TOP_LEVEL["runtime"], parents=parents), parents
    )
