"""Job commands over several nodes: `rnx list --node a,b` merges the nodes'
jobs (newest first, a NODE column); status, log and metrics find the node
that has the job (an id, a prefix of one, a name) and ask it."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from joblet.cli.context import CommandContext
from joblet.cli.fanout import ask_nodes, report_failures
from joblet.cli.node_select import JobMatch, NodeAnswer, answered, failed, pick_job
from joblet.client.errors import CliError

if TYPE_CHECKING:
    import grpc

    from joblet.api import joblet_pb2 as pb
    from joblet.cli.job_list import JobFilter
    from joblet.client.connection import JobClient


@dataclass(frozen=True)
class Fetched:
    """One node's jobs for `rnx list`, newest first, and what was left out."""

    jobs: list[pb.Job]
    more: bool = False  # more jobs match than the limit kept
    omitted: int = 0  # finished jobs an old node's capped ListJobs left out


def fetch_jobs(client: JobClient, wanted: JobFilter) -> Fetched:
    """The jobs `wanted` asks for: ListJobPages, or ListJobs on a node without it."""
    from joblet.cli.job_list import from_pages, page_request, select_jobs

    pages = client.list_job_pages(page_request(wanted))
    if pages is not None:
        jobs, more = from_pages(pages, wanted)
        return Fetched(jobs, more=more)
    res, omitted = client.list_jobs_counted()
    return Fetched(select_jobs(res.jobs, wanted), omitted=omitted)


def list_note(shown: int, more: bool, omitted: int) -> str:
    """The line for stderr when jobs were left out; '' when none were."""
    if more:
        return (
            f"showing the newest {shown} matching jobs; more match"
            " (--limit N for more, --all for every one)"
        )
    if omitted:
        return (
            f"{omitted} older finished job(s) left out: the node's list is capped at 3 MiB"
            " (rnx status ID shows any of them)"
        )
    return ""


def list_many(ctx: CommandContext, wanted: JobFilter, now: datetime, width: int) -> int:
    """`rnx list` over the nodes --node names; the failed ones on stderr."""
    from joblet.cli.job_list import format_rows, newest_first_key, render_list
    from joblet.cli.node_select import merge_sorted
    from joblet.client.connection import JobClient

    def fetch(channel: grpc.Channel, address: str) -> Fetched:
        return fetch_jobs(JobClient(channel, address), wanted)

    answers = ask_nodes(ctx, ctx.node_names(ctx.load_config()), fetch)
    got = answered(answers)
    if not got:  # no table at all rather than a misleading "No jobs."
        return report_failures(ctx, answers)
    per_node = [(node, fetched.jobs) for node, fetched in got]
    merged = merge_sorted(per_node, newest_first_key, wanted.limit, identity=_uuid)
    every = len({job.uuid for _, jobs in per_node for job in jobs})
    more = any(f.more for _, f in got) or len(merged) < every
    note = list_note(len(merged), more, sum(f.omitted for _, f in got))
    if note and not ctx.json:
        ctx.report(note)
    nodes, jobs = [node for node, _ in merged], [job for _, job in merged]
    args = ctx.args
    if ctx.json:
        print(_jobs_json(nodes, jobs, compat=ctx.json_compat), file=ctx.out, flush=True)
    elif args.quiet:
        for job in jobs:
            ctx.print(job.uuid)
    elif args.format:
        if jobs:
            rows = format_rows(jobs, args.format).splitlines()
            ctx.print("\n".join(f"{node}\t{row}" for node, row in zip(nodes, rows, strict=True)))
    else:
        ctx.print(render_list(jobs, now, width, full=args.no_trunc, nodes=nodes))
    return report_failures(ctx, answers)


def _uuid(job: pb.Job) -> str:
    return job.uuid


def _jobs_json(nodes: Sequence[str], jobs: Sequence[pb.Job], *, compat: bool) -> str:
    """One JSON document, every job with its "node"."""
    if compat:
        from joblet.cli.json_compat import list_entries

        entries = list_entries(jobs)
        return json.dumps([{"node": n, **e} for n, e in zip(nodes, entries, strict=True)])
    from joblet.cli.json_shape import to_plain

    plain = [{"node": n, **to_plain(job)} for n, job in zip(nodes, jobs, strict=True)]
    return json.dumps({"jobs": plain})


@dataclass(frozen=True)
class Resolved:
    """Where a job named across several nodes is: a context for its node
    alone (the full id in args.uuid), and the exit code the failed nodes
    leave (0: every node answered)."""

    ctx: CommandContext
    node: str = ""
    exit_code: int = 0
    status: pb.GetJobStatusRes | None = None


def resolve_job(ctx: CommandContext) -> Resolved:
    """With one node selected, `ctx` as it is; with several, ask each for
    the job in args.uuid and narrow `ctx` to the node that has it."""
    if not ctx.many_nodes:
        return Resolved(ctx)
    from joblet.client.connection import JobClient

    wanted = ctx.args.uuid
    names = ctx.node_names(ctx.load_config())

    def look(channel: grpc.Channel, address: str) -> pb.GetJobStatusRes | None:
        try:
            return JobClient(channel, address).get_job_status(wanted)
        except CliError as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise

    answers = ask_nodes(ctx, names, look)
    _refuse_ambiguity(answers)
    found = {node: status for node, status in answered(answers) if status is not None}
    matches = [JobMatch(node, status.uuid) for node, status in found.items()]
    if not matches and failed(answers):
        report_failures(ctx, answers)
        asked = [a.node for a in answers if a.ok]
        raise CliError(
            f"job {wanted} not found on nodes {', '.join(asked) or 'none'}; the others failed",
            code="NOT_FOUND",
        )
    match = pick_job(wanted, matches, names)
    code = report_failures(ctx, answers)
    narrowed = dataclasses.replace(ctx, args=_narrowed(ctx, match))
    return Resolved(narrowed, match.node, code, found[match.node])


def _narrowed(ctx: CommandContext, match: JobMatch) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(ctx.args), "node": match.node, "uuid": match.uuid})


def _refuse_ambiguity(answers: Sequence[NodeAnswer[object]]) -> None:
    """A prefix ambiguous on one node is the user's to fix, not a node failure."""
    for answer in answers:
        if answer.code == "INVALID_ARGUMENT":
            raise CliError(f"node {answer.node}: {answer.error}", code=answer.code)
