"""`rnx __complete nodes|jobs`: the words completion scripts offer.

Called on every TAB, so it must be quick and quiet: a short connect timeout,
nothing on stderr, and an empty answer (exit 0) when the config or the node
is not there.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb
    from joblet.cli.context import CommandContext

KINDS = ("nodes", "jobs")
COMPLETE_TIMEOUT_S = 1.0  # a TAB that hangs is worse than one that offers nothing
LIST_DEADLINE_S = 2.0  # for the answer, once connected (rnx list waits far longer)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS)
    parser.set_defaults(handler=show)


def job_words(jobs: Iterable[pb.Job]) -> list[str]:
    """Each job's id, then each distinct name (either one selects a job)."""
    ids = [job.uuid for job in jobs if job.uuid]
    names = sorted({job.name for job in jobs if job.name} - set(ids))
    return ids + names


def show(ctx: CommandContext) -> int:
    try:
        words = _words(ctx)
    except Exception:  # offline, no config, a bad certificate: offer nothing
        words = []
    for word in words:
        if word.isprintable() and not any(c.isspace() for c in word):
            ctx.out.write(word + "\n")
    return 0


def _words(ctx: CommandContext) -> list[str]:
    from joblet.client.config import find_config_path, load_rnx_config

    path = find_config_path(getattr(ctx.args, "config", None), ctx.env, ctx.cwd, ctx.home)
    config = load_rnx_config(path)
    if ctx.args.kind == "nodes":
        return list(config.names)
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc
    from joblet.client.connect import connect
    from joblet.client.connection import open_secure_channel

    node = config.node(ctx.node_name)
    factory = ctx.channel_factory or open_secure_channel
    timeout = getattr(ctx.args, "timeout", None) or COMPLETE_TIMEOUT_S
    channel = connect(node, factory, timeout, local_checks=ctx.channel_factory is None)
    try:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        jobs = list(stub.ListJobs(pb.EmptyRequest(), timeout=LIST_DEADLINE_S).jobs)
    finally:
        channel.close()
    return job_words(jobs)
