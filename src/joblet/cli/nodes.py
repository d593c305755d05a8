"""`rnx nodes`: the nodes of the client config and which one is selected."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from joblet.cli.commands import TOP_LEVEL
from joblet.cli.context import CommandContext
from joblet.cli.output import format_table
from joblet.cli.parser import RnxArgumentParser
from joblet.client.config import RnxConfig
from joblet.client.errors import CliError

if TYPE_CHECKING:
    from joblet.cli.parser import Subparsers


def _address(config: RnxConfig, name: str) -> tuple[str, str, str]:
    """(address, server name, problem) of a node; a malformed one is listed too."""
    try:
        node = config.node(name)
    except CliError as exc:
        return "-", "", exc.message
    return node.address, node.server_name, ""


def render_nodes(config: RnxConfig, selected: str) -> str:
    rows = []
    for name in config.names:
        address, server_name, problem = _address(config, name)
        shown = f"(unusable: {problem})" if problem else address
        rows.append(["*" if name == selected else "", name, shown, server_name or "-"])
    table = format_table(["", "NAME", "ADDRESS", "SERVER NAME"], rows)
    return f"Config: {config.path}\n{table}"


def nodes_json(config: RnxConfig, selected: str) -> str:
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
        nodes.append(entry)
    return json.dumps({"config": str(config.path), "selected": selected, "nodes": nodes})


def list_nodes(ctx: CommandContext) -> int:
    config = ctx.load_config()
    ctx.print(
        nodes_json(config, ctx.node_name) if ctx.json else render_nodes(config, ctx.node_name)
    )
    return 0


def add_commands(
    subparsers: Subparsers,
    parents: list[RnxArgumentParser],
) -> None:
    help_text = TOP_LEVEL["nodes"]
    add_arguments(subparsers.add_parser("nodes", help=help_text, parents=parents))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`rnx nodes` takes no arguments of its own."""
    parser.description = TOP_LEVEL["nodes"]
    parser.set_defaults(handler=list_nodes)
