"""`rnx gpu list`: the node's GPUs and the jobs holding them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from joblet.cli.context import CommandContext
from joblet.cli.metrics import call, open_channel
from joblet.cli.output import format_table, message_to_json

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb
    from joblet.cli.parser import RnxArgumentParser

HEADERS = ("INDEX", "UUID", "NAME", "MEMORY", "MINOR", "BUS ID", "JOBS")


def render_gpus(res: pb.ListGpusResponse) -> str:
    if not res.gpus:
        why = " (GPUs are disabled: gpu.enabled)" if res.inventory == "none" else ""
        return f"this node has no GPUs{why}"
    rows = [
        [
            str(g.index) + (" (MIG)" if g.mig else ""),
            g.uuid,
            g.name or "-",
            f"{g.memoryMb} MB" if g.memoryMb else "-",
            str(g.minor),
            g.busId or "-",
            ", ".join(g.jobUuids) or "-",
        ]
        for g in res.gpus
    ]
    footer = (
        f"inventory {res.inventory}, driver {res.driverVersion or '-'}, strategy "
        f"{res.strategy}{', shared' if res.sharing else ''}, "
        f"device filter {res.deviceFilter or 'NONE'}"
    )
    return format_table(HEADERS, rows) + "\n" + footer


def list_gpus(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc

    with open_channel(ctx) as (channel, address):
        res = call(
            address,
            pb_grpc.GpuServiceStub(channel).ListGpus,  # type: ignore[no-untyped-call]
            pb.ListGpusRequest(),
        )
    ctx.print(message_to_json(res) if ctx.json else render_gpus(res))
    return 0


def add_actions(parser: argparse.ArgumentParser, parents: list[RnxArgumentParser]) -> None:
    """The actions of `rnx gpu`."""
    actions = parser.add_subparsers(metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="list the GPUs and the jobs holding them", parents=parents
    )
    listing.set_defaults(handler=list_gpus)
