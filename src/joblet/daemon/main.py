"""The `joblet` command: setup, serve, shutdown, teardown, certs issue|revoke|list, audit.

Errors end as one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from joblet.command_exit import EXIT_ERROR, run_command
from joblet.config.model import DEFAULT_ROOT, DaemonConfig
from joblet.deferred import UNUSED_BY_DAEMON_AT_IDLE, defer_imports
from joblet.errors import JobletError

EXIT_USAGE = 2
# The `daemon` extra's modules: a client-only install (`joblet[client]`) lacks them.
DAEMON_MODULES = frozenset({"psutil", "pyseccomp", "zstandard", "pyroute2"})


class _VersionAction(argparse.Action):
    """--version, looked up only when asked: importlib.metadata brings zipfile,
    bz2 and lzma along, resident in every long-lived process that built this
    parser (the web UI's idle memory, bench/ui.py)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 help: str = "show the version and exit") -> None:  # fmt: skip
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"joblet {package_version()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="joblet", description="Joblet daemon: run isolated, resource-limited jobs."
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("version", help="print the daemon's version")

    setup = sub.add_parser("setup", help="create the root layout, certificates and configs")
    setup.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="default: %(default)s")
    setup.add_argument("--address", default="0.0.0.0", help="listen address (%(default)s)")
    setup.add_argument("--port", type=int, default=50051, help="listen port (%(default)s)")
    setup.add_argument(
        "--server-name",
        action="append",
        default=[],
        dest="server_names",
        metavar="NAME",
        help="a DNS name or IP clients use to reach this node (repeatable)",
    )
    setup.add_argument("--force", action="store_true", help="overwrite existing keys and configs")
    setup.add_argument(
        "--ca-cert",
        type=Path,
        metavar="FILE",
        help="issue this node's certificates from an existing CA (another node's"
        " config/ca-cert.pem) instead of a new one; needs --ca-key",
    )
    setup.add_argument(
        "--ca-key", type=Path, metavar="FILE", help="the key of --ca-cert (config/ca-key.pem)"
    )
    setup.add_argument(
        "--cgroup-parent",
        metavar="NAME",
        help="the daemon's cgroup parent (default: joblet for /opt/joblet, "
        "joblet-<hash of the root> for other roots)",
    )
    setup.add_argument(
        "--bridge-cidr",
        metavar="CIDR",
        help="the bridge network (default: a free one of 172.20-31.0.0/16)",
    )
    setup.add_argument(
        "--isolated-pool",
        metavar="CIDR",
        help="the pool of isolated jobs' /30s (default: a free one of 10.254-240.0.0/16)",
    )

    serve = sub.add_parser("serve", help="run the daemon in the foreground")
    serve.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_ROOT / "config" / "joblet-config.yml",
        help="default: %(default)s",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])

    for name, what in (("persist", "log and metric history"), ("state", "job state")):
        helper = sub.add_parser(name, help=f"run the {what} helper (the daemon starts it)")
        helper.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_ROOT / "config" / "joblet-config.yml",
            help="default: %(default)s",
        )
        helper.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
        helper.add_argument(
            "--exit-with-parent",
            action="store_true",
            help="exit when the daemon that started it dies",
        )

    teardown = sub.add_parser(
        "teardown",
        help="remove every kernel object a stopped daemon's root made (launcher, "
        "cgroups, bridges, nftables table, mounts, loop devices); files stay",
    )
    teardown.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_ROOT / "config" / "joblet-config.yml",
        help="default: %(default)s",
    )
    teardown.add_argument(
        "--force", action="store_true", help="kill running jobs (SIGKILL) instead of refusing"
    )

    _add_shutdown_parser(sub)

    _add_certs_parser(sub)

    audit = sub.add_parser("audit", help="read the audit log (mutating and refused calls)")
    audit.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_ROOT / "config" / "joblet-config.yml",
        help="default: %(default)s",
    )
    audit.add_argument("--since", metavar="DURATION", help="only the last 10m, 2h, 1h30m...")
    audit.add_argument("--cn", help="only calls by this client (certificate CN)")
    audit.add_argument("--rpc", help="only this method (RunJob or /joblet.JobService/RunJob)")
    audit.add_argument(
        "--outcome",
        action="append",
        default=[],
        help="OK, DENIED or a gRPC status code name (repeatable, or comma-separated)",
    )
    audit.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    _add_mcp_parser(sub)
    _add_ui_parser(sub)
    _add_history_parser(sub)

    config = sub.add_parser("config", help="check a config file")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = config_sub.add_parser(
        "check", help="report unknown keys and bad values without starting anything"
    )
    check.add_argument("file", type=Path, metavar="FILE", help="a joblet-config.yml")
    return parser


def _add_ui_parser(sub: Any) -> None:
    ui = sub.add_parser(
        "ui", help="serve the web dashboard (a client of the daemon's API); needs joblet[ui]"
    )
    ui.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_ROOT / "config" / "joblet-config.yml",
        help="the daemon config whose ui: section applies (default: %(default)s)",
    )
    ui.add_argument("--listen", metavar="HOST:PORT", help="instead of ui.listen")
    ui.add_argument("--clients", type=Path, metavar="FILE", help="instead of ui.clients")
    ui.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    ui.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    ui_sub = ui.add_subparsers(dest="ui_command", metavar="COMMAND")
    token = ui_sub.add_parser("token", help="print a one-time login token (for kiosks, scripts)")
    token.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_ROOT / "config" / "joblet-config.yml",
        help="default: %(default)s",
    )
    token.add_argument("--role", required=True, choices=["admin", "viewer"])
    token.add_argument("--ttl", default="60s", metavar="DURATION", help="validity (%(default)s)")
    token.add_argument("--name", default="host", help="the session's CN (%(default)s)")


def _cmd_ui(args: argparse.Namespace) -> int:
    from joblet.ui.config import load_ui_config

    ui_config, daemon_config = load_ui_config(args.config)
    if args.ui_command == "token":
        import time

        from joblet.config.units import parse_duration_s
        from joblet.ui.config import login_key_path
        from joblet.ui.tokens import load_or_create_key, mint_token

        try:
            ttl = parse_duration_s(args.ttl)
        except ValueError as exc:
            print(f"joblet: error: --ttl: {exc}", file=sys.stderr)
            return EXIT_USAGE
        key = load_or_create_key(login_key_path(daemon_config.layout.root))
        print(mint_token(key, args.role, args.name, time.time(), ttl))
        return 0
    missing = [name for name in ("aiohttp", "jinja2") if not _importable(name)]
    if missing:
        raise JobletError(
            f"the web UI needs the ui extra ({missing[0]} is missing): pip install 'joblet[ui]'"
        )
    from joblet.ui.handoff import Handoff, exec_runtime, facts_of

    if args.exit_with_parent:
        _exit_with_parent()  # kept across exec(2)
    # the serving process starts afresh: none of the parsing above stays resident
    exec_runtime(Handoff(ui_config, facts_of(daemon_config), listen=args.listen,
                         clients=args.clients, exit_with_parent=args.exit_with_parent,
                         log_level=args.log_level))  # fmt: skip


def _add_history_parser(sub: Any) -> None:
    history = sub.add_parser(
        "history", help="move a job's log and metric history between nodes and backends"
    )
    history_sub = history.add_subparsers(dest="history_command", required=True, metavar="COMMAND")
    export = history_sub.add_parser(
        "export", help="write a job's history (this disk, else the archive) to DIR/JOB_ID"
    )
    export.add_argument("job_id", metavar="JOB_ID")
    export.add_argument("dir", type=Path, metavar="DIR")
    imported = history_sub.add_parser(
        "import", help="check an export (DIR/JOB_ID) and put it in this node's history"
    )
    imported.add_argument("dir", type=Path, metavar="DIR")
    for each in (export, imported):
        each.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_ROOT / "config" / "joblet-config.yml",
            help="default: %(default)s",
        )


def _cmd_history(args: argparse.Namespace) -> int:
    from joblet.persist.archive import transfer
    from joblet.persist.config import load_persist_config

    config = load_persist_config(args.config)
    try:
        if args.history_command == "export":
            print(transfer.export_job(config, args.job_id, args.dir))
        else:
            print(transfer.import_job(config, args.dir))
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise
        raise JobletError(f"{exc.filename or args.dir}: {exc.strerror or exc}") from exc
    return 0


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("joblet")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"joblet {package_version()}")
    return 0


def _add_certs_parser(sub: Any) -> None:
    certs = sub.add_parser("certs", help="manage client certificates")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True, metavar="COMMAND")
    issue = certs_sub.add_parser("issue", help="issue a client certificate signed by the CA")
    issue.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="default: %(default)s")
    issue.add_argument(
        "--role",
        required=True,
        choices=["admin", "viewer", "node"],
        help="node: a daemon's certificate for forwarding calls to the other nodes of its"
        " cluster (printed as the cluster: keys of joblet-config.yml)",
    )
    issue.add_argument("--name", required=True, help="the client's name (certificate CN)")
    issue.add_argument("--address", help="HOST:PORT clients dial (default: from rnx-config.yml)")
    issue.add_argument(
        "--p12",
        type=Path,
        metavar="FILE",
        help="write the certificate, its key and the CA as a PKCS#12 bundle (mode 0600) for a "
        "browser to sign in to the web UI with, instead of printing an rnx node entry",
    )
    issue.add_argument(
        "--p12-password-file",
        type=Path,
        metavar="FILE",
        help="encrypt the bundle with the password on this file's first line",
    )
    revoke = certs_sub.add_parser(
        "revoke",
        help="revoke client certificates: a new CRL (ROOT/certs/crl.pem) the daemon "
        "reloads within 2 s",
    )
    revoke.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="default: %(default)s")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="every valid certificate with this CN")
    which.add_argument("--serial", help="the certificate with this serial (hex)")
    listing = certs_sub.add_parser("list", help="issued and revoked client certificates")
    listing.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="default: %(default)s")


def _add_shutdown_parser(sub: Any) -> None:
    shutdown = sub.add_parser(
        "shutdown",
        help="stop the daemon serving a root and wait until it has exited; running "
        "jobs stay with the launcher for the next start unless --stop-jobs",
    )
    shutdown.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_ROOT / "config" / "joblet-config.yml",
        help="default: %(default)s",
    )
    shutdown.add_argument(
        "--stop-jobs",
        action="store_true",
        help="stop the running jobs first (STOPPED, 'stopped by daemon shutdown')",
    )
    shutdown.add_argument(
        "--timeout",
        default="120s",
        metavar="DURATION",
        help="give up waiting after this long (%(default)s); exit 1",
    )


def _add_mcp_parser(sub: Any) -> None:
    mcp = sub.add_parser(
        "mcp", help="serve a node's jobs as MCP tools (stdio, or --http); needs joblet[mcp]"
    )
    mcp.add_argument("--node", default=None, help="node of the rnx config (default: default)")
    mcp.add_argument("--config", default=None, metavar="FILE", help="rnx config file")
    mcp.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="HTTP listen address")
    mcp.add_argument("--port", type=int, default=8000, help="HTTP port")


def _cmd_setup(args: argparse.Namespace) -> int:
    from joblet.setup.command import read_ca, run_setup
    from joblet.setup.layout import SetupError
    from joblet.setup.ranges import PlacementRequest

    if (args.ca_cert is None) != (args.ca_key is None):
        raise SetupError("--ca-cert and --ca-key go together: give both, or neither")
    ca = read_ca(args.ca_cert, args.ca_key) if args.ca_cert else None
    asked = PlacementRequest(args.cgroup_parent, args.bridge_cidr, args.isolated_pool)
    result = run_setup(
        args.root, args.address, args.port, args.server_names, args.force, asked=asked, ca=ca
    )
    print(result.summary())
    return 0


def require_daemon_packages(command: str) -> None:
    """Refuse before anything starts when the `daemon` extra is not installed."""
    missing = sorted(name for name in DAEMON_MODULES if not _importable(name))
    if missing:
        raise JobletError(
            f"`joblet {command}` needs the daemon's packages ({', '.join(missing)} "
            f"missing): pip install 'joblet[daemon]'"
        )


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(name) is not None
    except ImportError:  # a finder that refuses it outright
        return False


def _cmd_serve(args: argparse.Namespace) -> int:
    require_daemon_packages("serve")
    from joblet.config.loader import load_daemon_config

    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from joblet.runtimes.config import load_runtime_config

    # A crash in a C extension (gRPC core, protobuf) prints the Python stacks
    # to the log instead of ending the daemon without a word.
    faulthandler.enable()
    config = load_daemon_config(args.config)
    load_runtime_config(args.config)  # refused here, before anything starts
    asyncio.run(_serve(config, args.config))
    return 0


async def _serve(config: DaemonConfig, config_path: Path) -> None:
    """Start the helpers first: their start (an interpreter, imports, opening the
    state store) then overlaps importing the daemon, the longest part of a start."""
    import os

    from joblet.daemon.cgroup_owner import claim_cgroup_parent
    from joblet.daemon.helpers import prepare_layout, supervise_helpers, supervise_ui
    from joblet.daemon.rootlock import hold_root

    require_cgroups(config)
    raise_limits()
    prepare_layout(config.layout)
    lock = hold_root(config.layout)  # before the helpers: one daemon per root
    try:
        # Before any helper starts: a daemon refused its cgroup parent starts nothing.
        claim = claim_cgroup_parent(config)
    except BaseException:
        os.close(lock)
        raise
    try:
        async with (
            supervise_helpers(config_path, config.layout) as supervisors,
            supervise_ui(config_path, config.layout, config.ui.enabled),
        ):
            from joblet.daemon.server import Daemon

            await Daemon(config, config_path, supervisors, claim).run_until_signal()
    finally:
        claim.release()
        os.close(lock)


def raise_limits() -> None:
    """Raise what the daemon may raise for itself before jobs need it."""
    from joblet.jobs.host_limits import raise_open_files_limit

    done = raise_open_files_limit()
    if done:
        logging.getLogger("joblet.daemon").info("%s", done)


def require_cgroups(config: DaemonConfig) -> None:
    """Log which cgroups the jobs get, or refuse to start: jobs without limits
    only when `cgroup.backend: none` asks for them."""
    from joblet.resources.detect import cgroup_verdict, detect_layout

    mount_root = config.cgroup.mount_root
    verdict = cgroup_verdict(detect_layout(mount_root), config.cgroup.backend, mount_root)
    if not verdict.usable:
        raise JobletError(verdict.message)
    log = logging.getLogger("joblet.daemon")
    if config.cgroup.backend == "none":
        log.warning("%s", verdict.message)
    else:
        log.info("%s", verdict.message)


def _cmd_certs(args: argparse.Namespace) -> int:
    from joblet.setup import command

    if args.certs_command == "revoke":
        for cert in command.revoke_certs(args.root, args.name, args.serial):
            print(f"revoked {cert.name or '(not in the index)'} serial {cert.serial}")
        return 0
    if args.certs_command == "list":
        print(command.render_cert_table(command.list_certs(args.root)), end="")
        return 0
    if args.p12 is not None:
        return _issue_p12(args)
    if args.p12_password_file is not None:
        print("joblet: error: --p12-password-file goes with --p12", file=sys.stderr)
        return EXIT_USAGE
    if args.role == "node":
        node_cert, node_key = command.issue_cert(args.root, args.role, args.name)
        print(command.cluster_snippet(node_cert, node_key), end="")
        return 0
    entry = command.issue_node_entry(args.root, args.role, args.name, args.address)
    print(command.node_snippet(args.name, entry), end="")
    return 0


def _issue_p12(args: argparse.Namespace) -> int:
    from joblet.setup import command, p12

    if args.role == "node":
        print("joblet: error: --p12 is for admin and viewer certificates", file=sys.stderr)
        return EXIT_USAGE
    password = p12.read_password(args.p12_password_file)
    if args.p12.exists():
        raise p12.P12Error(f"{args.p12} exists already; choose another file")
    entry = command.issue_node_entry(args.root, args.role, args.name, args.address)
    data = p12.bundle(args.name, entry.cert, entry.key, entry.ca, password)
    p12.write_bundle(args.p12, data)
    how = "encrypted" if password else "not encrypted: keep it as safe as a key"
    print(f"wrote {args.p12}: the {args.role} certificate of {args.name} ({how})")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from joblet.config.loader import load_daemon_config
    from joblet.config.units import parse_duration_s
    from joblet.security import audit_query
    from joblet.security.audit_log import rotated_paths

    try:
        since = None if args.since is None else parse_duration_s(args.since)
        outcomes = audit_query.parse_outcomes(args.outcome)
    except ValueError as exc:
        print(f"joblet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = load_daemon_config(args.config)
    start = None if since is None else datetime.now(UTC) - timedelta(seconds=since)
    wanted = audit_query.AuditFilter(start, args.cn, args.rpc, outcomes)
    paths = rotated_paths(config.layout.audit_log, config.audit.max_files)
    records, bad = audit_query.read_records(paths)
    shown = [record for record in records if wanted.matches(record)]
    render = audit_query.render_json if args.json else audit_query.render_table
    for line in render(shown):
        print(line)
    if bad:
        print(f"joblet: {bad} line(s) of the audit log are not records", file=sys.stderr)
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    from joblet.config.check import check_config_file

    problems = check_config_file(args.file)
    for line in problems:
        print(line)
    if problems:
        return EXIT_ERROR
    print(f"{args.file}: ok")
    return 0


def _cmd_teardown(args: argparse.Namespace) -> int:
    require_daemon_packages("teardown")
    from joblet.config.loader import load_daemon_config
    from joblet.daemon.teardown import teardown

    config = load_daemon_config(args.config)
    report = teardown(config, args.force)
    print(report.summary(config.layout.root))
    for problem in report.problems:
        print(f"joblet: error: not removed: {problem}", file=sys.stderr)
    return EXIT_ERROR if report.problems else 0


def _cmd_shutdown(args: argparse.Namespace) -> int:
    from joblet.config.loader import load_daemon_config
    from joblet.config.units import parse_duration_s
    from joblet.daemon.shutdown import shutdown_daemon

    try:
        timeout = parse_duration_s(args.timeout)
    except ValueError as exc:
        print(f"joblet: error: --timeout: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = load_daemon_config(args.config)
    stopped = shutdown_daemon(config.layout, args.stop_jobs, timeout)
    jobs = "its jobs stopped" if args.stop_jobs else "running jobs left to the launcher"
    print(f"joblet daemon (pid {stopped.pid}) exited after {stopped.seconds:.1f}s; {jobs}")
    return 0


def _exit_with_parent() -> None:
    import os
    import signal

    from joblet.isolation.libc import set_pdeathsig

    parent = os.getppid()
    set_pdeathsig(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        sys.exit(0)


def _cmd_helper(args: argparse.Namespace) -> int:
    require_daemon_packages(args.command)
    if args.exit_with_parent:
        _exit_with_parent()
    helper_argv = ["--config", str(args.config), "--log-level", args.log_level]
    if args.command == "persist":
        from joblet.persist.service import main as persist_main

        return persist_main(helper_argv)
    from joblet.state.service import main as state_main

    return state_main(helper_argv)


def _cmd_mcp(args: argparse.Namespace) -> int:
    try:
        from joblet.mcp.server import serve
    except ImportError as exc:
        raise JobletError(
            f"the MCP server needs the mcp package ({exc.name}): pip install 'joblet[mcp]'"
        ) from exc
    from joblet.sdk.errors import JobletException

    try:
        serve(args.node, args.config, args.http, args.host, args.port)
    except JobletException as exc:
        raise JobletError(str(exc)) from exc
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    defer_imports(UNUSED_BY_DAEMON_AT_IDLE)  # resident memory of a long-lived process
    args = _parser().parse_args(argv)
    handlers = {
        "setup": _cmd_setup,
        "serve": _cmd_serve,
        "certs": _cmd_certs,
        "audit": _cmd_audit,
        "persist": _cmd_helper,
        "state": _cmd_helper,
        "config": _cmd_config_check,
        "teardown": _cmd_teardown,
        "shutdown": _cmd_shutdown,
        "mcp": _cmd_mcp,
        "ui": _cmd_ui,
        "history": _cmd_history,
        "version": _cmd_version,
    }
    try:
        return run_command(lambda: handlers[args.command](args))
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in DAEMON_MODULES:
            raise
        print(
            f"joblet: error: `joblet {args.command}` needs the daemon's packages "
            f"({exc.name} is missing): pip install 'joblet[daemon]'",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
