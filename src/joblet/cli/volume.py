"""`rnx volume create|list|remove`: the node's volumes.

    rnx volume create NAME --size SIZE [--type filesystem|memory]
    rnx volume list
    rnx volume remove NAME

SIZE: a bare number is bytes; KB, MB, GB, TB are powers of 1000, KiB, MiB,
GiB, TiB powers of 1024 (500MB, 1GB, 1GiB). A job mounts a volume with
`rnx job run --volume NAME` (or NAME:ro) at /volumes/NAME.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from joblet.cli.commands import TOP_LEVEL
from joblet.cli.context import CommandContext
from joblet.cli.metrics import call, open_channel
from joblet.cli.node_select import with_node_column
from joblet.cli.output import format_local_time, format_table
from joblet.cli.parser import RnxArgumentParser

if TYPE_CHECKING:
    import grpc

    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc
    from joblet.cli.parser import Subparsers

TYPES = ("filesystem", "memory")
TIMEOUT_S = 120.0  # a large filesystem volume is preallocated and formatted


def render_volumes(volumes: list[pb.Volume], nodes: Sequence[str] = ()) -> str:
    """The table; with `nodes` (one per volume), a NODE column first."""
    if not volumes:
        return "No volumes."
    headers = ["NAME", "SIZE", "TYPE", "JOBS", "CREATED", "PATH"]
    rows = [
        [v.name, v.size, v.type, str(v.jobCount), format_local_time(v.createdTime), v.path]
        for v in volumes
    ]
    if nodes:
        headers, rows = with_node_column(headers, rows, nodes)
    return format_table(headers, rows)


def _stub(channel: grpc.Channel) -> pb_grpc.VolumeServiceStub:
    from joblet.api import joblet_pb2_grpc as pb_grpc

    return pb_grpc.VolumeServiceStub(channel)  # type: ignore[no-untyped-call]


def create_volume(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb

    args = ctx.args
    req = pb.CreateVolumeReq(name=args.name, size=args.size, type=args.type)
    with open_channel(ctx) as (channel, address):
        res = call(address, _stub(channel).CreateVolume, req, timeout=TIMEOUT_S)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(f"Volume {res.name} created ({res.type}, {res.size}) at {res.path}")
    return 0


def list_volumes(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb

    if ctx.many_nodes:
        from joblet.cli.many_lists import list_many

        def fetch(channel: grpc.Channel, address: str) -> list[pb.Volume]:
            req = pb.EmptyRequest()
            return list(call(address, _stub(channel).ListVolumes, req, timeout=30).volumes)

        return list_many(ctx, fetch, "volumes", render_volumes)
    with open_channel(ctx) as (channel, address):
        res = call(address, _stub(channel).ListVolumes, pb.EmptyRequest(), timeout=30)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(render_volumes(list(res.volumes)))
    return 0


def remove_volume(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb

    req = pb.RemoveVolumeReq(name=ctx.args.name)
    with open_channel(ctx) as (channel, address):
        res = call(address, _stub(channel).RemoveVolume, req, timeout=TIMEOUT_S)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(res.message or f"Volume {ctx.args.name} removed")
    return 0


def add_commands(subparsers: Subparsers, parents: list[RnxArgumentParser]) -> None:
    """Register `rnx volume` and its actions."""
    add_actions(subparsers.add_parser("volume", help=TOP_LEVEL["volume"], parents=parents), parents)


def add_actions(volume: argparse.ArgumentParser, parents: list[RnxArgumentParser]) -> None:
    """The actions of `rnx volume`."""
    actions = volume.add_subparsers(metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="create a volume", description=__doc__, parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    create.add_argument("name", metavar="NAME", help="volume name")
    create.add_argument("--size", required=True, metavar="SIZE", help="e.g. 500MB, 1GB, 1GiB")
    create.add_argument("--type", choices=TYPES, default="filesystem", help="default: filesystem")
    create.set_defaults(handler=create_volume)
    listing = actions.add_parser("list", help="list volumes", parents=parents)
    listing.set_defaults(handler=list_volumes)
    remove = actions.add_parser("remove", help="remove an unused volume", parents=parents)
    remove.add_argument("name", metavar="NAME", help="volume name")
    remove.set_defaults(handler=remove_volume)
