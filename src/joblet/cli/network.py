"""`rnx network create NAME --cidr CIDR`, `rnx network list`, `rnx network remove NAME`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from joblet.cli.commands import TOP_LEVEL
from joblet.cli.context import CommandContext
from joblet.cli.metrics import call, open_channel
from joblet.cli.node_select import with_node_column
from joblet.cli.output import format_table, message_to_json
from joblet.cli.parser import RnxArgumentParser

if TYPE_CHECKING:
    import grpc

    from joblet.api import joblet_pb2 as pb
    from joblet.cli.parser import Subparsers

HEADERS = ("NAME", "CIDR", "BRIDGE", "JOBS")


def render_networks(networks: pb.Networks) -> str:
    return render_network_rows(list(networks.networks))


def render_network_rows(networks: Sequence[pb.Network], nodes: Sequence[str] = ()) -> str:
    """The table; with `nodes` (one per network), a NODE column first."""
    rows = [[n.name, n.cidr or "-", n.bridge or "-", str(n.jobCount)] for n in networks]
    if nodes:
        headers, rows = with_node_column(HEADERS, rows, nodes)
        return format_table(headers, rows)
    return format_table(HEADERS, rows)


def networks_json(networks: pb.Networks) -> str:
    return message_to_json(networks)


def create_network(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc

    request = pb.CreateNetworkReq(name=ctx.args.name, cidr=ctx.args.cidr)
    with open_channel(ctx) as (channel, address):
        res = call(
            address,
            pb_grpc.NetworkServiceStub(channel).CreateNetwork,  # type: ignore[no-untyped-call]
            request,
        )
    if ctx.json:
        print(json.dumps({"name": res.name, "cidr": res.cidr, "bridge": res.bridge}), file=ctx.out)
    else:
        ctx.print(f"network {res.name} created: {res.cidr} (bridge {res.bridge})")
    return 0


def list_networks(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc

    if ctx.many_nodes:
        from joblet.cli.many_lists import list_many

        def fetch(channel: grpc.Channel, address: str) -> list[pb.Network]:
            stub = pb_grpc.NetworkServiceStub(channel)  # type: ignore[no-untyped-call]
            return list(call(address, stub.ListNetworks, pb.EmptyRequest()).networks)

        return list_many(ctx, fetch, "networks", render_network_rows)
    with open_channel(ctx) as (channel, address):
        res = call(
            address,
            pb_grpc.NetworkServiceStub(channel).ListNetworks,  # type: ignore[no-untyped-call]
            pb.EmptyRequest(),
        )
    ctx.print(networks_json(res) if ctx.json else render_networks(res))
    return 0


def remove_network(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc

    request = pb.RemoveNetworkReq(name=ctx.args.name)
    with open_channel(ctx) as (channel, address):
        res = call(
            address,
            pb_grpc.NetworkServiceStub(channel).RemoveNetwork,  # type: ignore[no-untyped-call]
            request,
        )
    if ctx.json:
        print(json.dumps({"success": res.success, "message": res.message}), file=ctx.out)
    else:
        ctx.print(res.message)
    return 0


def add_commands(subparsers: Subparsers, parents: list[RnxArgumentParser]) -> None:
    """Register `rnx network` and its actions."""
    add_actions(
        subparsers.add_parser("network", help=TOP_LEVEL["network"], parents=parents), parents
    )


def add_actions(parser: argparse.ArgumentParser, parents: list[RnxArgumentParser]) -> None:
    """The actions of `rnx network`."""
    actions = parser.add_subparsers(metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a custom network", parents=parents)
    create.add_argument("name", metavar="NAME", help="[a-z0-9][a-z0-9-]{0,31}")
    create.add_argument("--cidr", required=True, help="IPv4 /16../29 in RFC 1918 or 100.64/10")
    create.set_defaults(handler=create_network)
    listing = actions.add_parser(
        "list", help="list networks with their job counts", parents=parents
    )
    listing.set_defaults(handler=list_networks)
    remove = actions.add_parser("remove", help="remove an unused custom network", parents=parents)
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(handler=remove_network)
