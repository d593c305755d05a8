"""`rnx nodes`: the nodes of the client config, each asked at once whether
it answers (latency, version, node id, active jobs); `--no-probe` lists the
config alone, `--cluster` the registry of the selected node's cluster."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING

from joblet.cli.commands import TOP_LEVEL
from joblet.cli.context import CommandContext
from joblet.cli.node_select import NodeAnswer
from joblet.cli.output import format_table
from joblet.cli.parser import RnxArgumentParser
from joblet.client.config import RnxConfig
from joblet.client.errors import EXIT_FAILURE, CliError
from joblet.client.probe import ACTIVE_STATUSES, Probe

if TYPE_CHECKING:
    import grpc

    from joblet.api import joblet_pb2 as pb
    from joblet.cli.parser import Subparsers


def _address(config: RnxConfig, name: str) -> tuple[str, str, str]:
    """(address, server name, problem) of a node; a malformed one is listed too."""
    try:
        node = config.node(name)
    except CliError as exc:
        return "-", "", exc.message
    return node.address, node.server_name, ""


def render_nodes(
    config: RnxConfig, selected: str, probes: dict[str, NodeAnswer[Probe]] | None = None
) -> str:
    """The table; with `probes`, what each node answered."""
    headers = ["", "NAME", "ADDRESS", "SERVER NAME"]
    if probes is not None:
        headers += ["REACHABLE", "LATENCY", "VERSION", "NODE ID", "JOBS", "FREE GPUS"]
    rows = []
    for name in config.names:
        address, server_name, problem = _address(config, name)
        shown = f"(unusable: {problem})" if problem else address
        row = ["*" if name == selected else "", name, shown, server_name or "-"]
        if probes is not None:
            row += _probe_cells(probes.get(name))
        rows.append(row)
    return f"Config: {config.path}\n{format_table(headers, rows)}"


def _probe_cells(answer: NodeAnswer[Probe] | None) -> list[str]:
    if answer is None or answer.value is None:
        return ["no", "-", "-", "-", "-", "-"]
    p = answer.value
    gpus = "-" if p.free_gpus is None else str(p.free_gpus)
    return ["yes", f"{p.latency_ms:.1f} ms", p.version or "-", p.node_id or "-",
            str(p.active_jobs), gpus]  # fmt: skip


def nodes_json(
    config: RnxConfig, selected: str, probes: dict[str, NodeAnswer[Probe]] | None = None
) -> str:
    nodes = []
    for name in config.names:
        address, server_name, problem = _address(config, name)
        entry: dict[str, object] = {
            "name": name,
            "address": address,
            "server_name": server_name,
            "selected": name == selected,
        }
        if problem:
            entry["error"] = problem
        if probes is not None:
            entry.update(_probe_json(probes.get(name)))
        nodes.append(entry)
    return json.dumps({"config": str(config.path), "selected": selected, "nodes": nodes})


def _probe_json(answer: NodeAnswer[Probe] | None) -> dict[str, object]:
    if answer is None or answer.value is None:
        shown: dict[str, object] = {"reachable": False}
        if answer is not None and answer.error:
            shown["error"] = answer.error
        return shown
    p = answer.value
    return {
        "reachable": True,
        "latency_ms": round(p.latency_ms, 3),
        "version": p.version,
        "node_id": p.node_id,
        "active_jobs": p.active_jobs,
        "free_gpus": p.free_gpus,
    }


def probe(channel: grpc.Channel, address: str) -> Probe:
    """One GetSystemStatus (timed: the latency) and the count of active jobs."""
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc
    from joblet.cli.metrics import call
    from joblet.client.connection import JobClient

    stub = pb_grpc.MonitoringServiceStub(channel)  # type: ignore[no-untyped-call]
    started = time.perf_counter()
    status = call(address, stub.GetSystemStatus, pb.EmptyRequest(), timeout=30)
    latency_ms = (time.perf_counter() - started) * 1000
    request = pb.ListJobPagesRequest(statuses=ACTIVE_STATUSES, pageSize=1000)
    pages = JobClient(channel, address).list_job_pages(request)
    active = sum(len(page.jobs) for page in pages or ())
    version = status.server_version.version
    return Probe(latency_ms, version, status.host.nodeId, active)


def list_nodes(ctx: CommandContext) -> int:
    from joblet.cli.fanout import ask_nodes

    if ctx.args.cluster:
        return cluster_nodes(ctx)
    config = ctx.load_config()
    probes = None
    if not ctx.args.no_probe:
        probes = {a.node: a for a in ask_nodes(ctx, config.names, probe)}
    render = nodes_json if ctx.json else render_nodes
    ctx.print(render(config, ctx.node_name, probes))
    bad = [a for a in (probes or {}).values() if not a.ok]
    for answer in bad:
        if not ctx.json:  # under --json each node's error is in its entry
            ctx.report_node_error(answer.node, answer.error, answer.code or "FAILED")
    return EXIT_FAILURE if bad else 0


CLUSTER_HEADERS = ["NODE ID", "ADDRESS", "VERSION", "CPUS", "MEMORY", "FREE SLOTS"]
CLUSTER_HEADERS += ["LEASE LEFT", "LABELS"]


def render_cluster(res: pb.ClusterNodes) -> str:
    from joblet.client.progress_text import human_bytes

    rows = [
        [n.nodeId, n.address, n.version or "-", str(n.cpus), human_bytes(n.memoryBytes),
         "no limit" if n.freeSlots < 0 else str(n.freeSlots), f"{n.leaseLeftSeconds:.1f}s",
         ",".join(f"{k}={v}" for k, v in sorted(n.labels.items())) or "-"]
        for n in res.nodes
    ]  # fmt: skip
    head = f"Cluster: {res.clusterName} (as node {res.answeredBy} sees it)"
    return f"{head}\n{format_table(CLUSTER_HEADERS, rows)}"


def cluster_nodes(ctx: CommandContext) -> int:
    """`rnx nodes --cluster`: the registry of the selected node's cluster."""
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc
    from joblet.cli.metrics import call, open_channel

    with open_channel(ctx) as (channel, address):
        stub = pb_grpc.ClusterServiceStub(channel)  # type: ignore[no-untyped-call]
        res: pb.ClusterNodes = call(address, stub.ListClusterNodes, pb.EmptyRequest(), timeout=30)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(render_cluster(res))
    return 0


def add_commands(
    subparsers: Subparsers,
    parents: list[RnxArgumentParser],
) -> None:
    help_text = TOP_LEVEL["nodes"]
    add_arguments(subparsers.add_parser("nodes", help=help_text, parents=parents))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = TOP_LEVEL["nodes"]
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--no-probe", action="store_true", help="list the config only; ask no node")
    shown.add_argument(
        "--cluster",
        action="store_true",
        help="the nodes of the selected node's cluster, from their leases in its store",
    )
    parser.set_defaults(handler=list_nodes)
