"""Listings over several nodes (volumes, networks, runtimes, host status):
every node asked at once, one table with a NODE column, "node" in --json;
a node that fails is named on stderr and makes the exit code non-zero."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from joblet.cli.context import CommandContext
from joblet.cli.fanout import Work, ask_nodes, report_failures
from joblet.cli.node_select import answered, tag_rows

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from joblet.api import joblet_pb2 as pb

_Item = TypeVar("_Item", bound="Message")

# (items of every node, their nodes) -> the table
Render = Callable[[list[_Item], list[str]], str]


def list_many(
    ctx: CommandContext,
    fetch: Work[Sequence[_Item]],
    json_key: str,
    render: Render[_Item],
) -> int:
    """Ask every node --node names with `fetch` and print the merged items."""
    from joblet.cli.json_shape import to_plain

    answers = ask_nodes(ctx, ctx.node_names(ctx.load_config()), fetch)
    if not answered(answers):  # nothing to print rather than an empty table
        return report_failures(ctx, answers)
    tagged = tag_rows(answered(answers))
    nodes, items = [node for node, _ in tagged], [item for _, item in tagged]
    if ctx.json:
        plain = [{"node": node, **to_plain(item)} for node, item in tagged]
        print(json.dumps({json_key: plain}), file=ctx.out, flush=True)
    else:
        ctx.print(render(items, nodes))
    return report_failures(ctx, answers)


def status_many(ctx: CommandContext, fetch: Work[pb.SystemStatusRes]) -> int:
    """`rnx monitor status` over several nodes: a line per node (a JSON
    object per node, with "node", under --json)."""
    from joblet.cli.json_shape import to_plain

    answers = ask_nodes(ctx, ctx.node_names(ctx.load_config()), fetch)
    got = answered(answers)
    if ctx.json:
        for node, res in got:
            print(json.dumps({"node": node, **to_plain(res)}), file=ctx.out, flush=True)
    else:
        ctx.print(render_statuses([res for _, res in got], [node for node, _ in got]))
    return report_failures(ctx, answers)


STATUS_HEADERS = (
    *("HOST", "NODE ID", "CPUS", "CPU%", "LOAD", "MEMORY", "MEM%", "UPTIME", "VERSION"),
)


def render_statuses(statuses: Sequence[pb.SystemStatusRes], nodes: Sequence[str]) -> str:
    from joblet.cli.node_select import with_node_column
    from joblet.cli.output import format_table
    from joblet.client.progress_text import human_bytes

    rows = []
    for res in statuses:
        h, c, m = res.host, res.cpu, res.memory
        load = f"{c.loadAverage[0]:.2f}" if c.loadAverage else "-"
        rows.append([
            h.hostname, h.nodeId or "-", str(c.cores), f"{c.usagePercent:.1f}", load,
            f"{human_bytes(m.usedBytes)} / {human_bytes(m.totalBytes)}",
            f"{m.usagePercent:.1f}", f"{h.uptime // 3600}h{h.uptime % 3600 // 60:02d}m",
            res.server_version.version or "-",
        ])  # fmt: skip
    headers, rows = with_node_column(STATUS_HEADERS, rows, nodes)
    return format_table(headers, rows)
