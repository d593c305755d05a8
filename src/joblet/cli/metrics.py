"""`rnx job metrics JOB_ID`: a job's live metrics (a table refreshing in place
in a terminal, one line per sample when piped, --json lines), or --summary.

Also the pieces `rnx monitor` shares: the channel context and byte formatting.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from joblet.cli.commands import JOB_ACTIONS
from joblet.cli.context import CommandContext
from joblet.cli.output import format_table
from joblet.cli.parser import RnxArgumentParser
from joblet.cli.terminal import escape_text
from joblet.client.progress_text import human_bytes

if TYPE_CHECKING:
    import grpc

    from joblet.api import joblet_pb2 as pb
    from joblet.cli.parser import Subparsers

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: redraw in place
_T = TypeVar("_T")


@contextmanager
def open_channel(ctx: CommandContext) -> Iterator[tuple[grpc.Channel, str]]:
    """A channel to the selected node (the test factory or mutual TLS), closed on exit."""
    node = ctx.node()
    channel = ctx.open_channel(node)
    try:
        yield channel, node.address
    finally:
        channel.close()


def call(address: str, method: Callable[..., _T], request: Any, **kw: Any) -> _T:
    """One call; a gRPC failure becomes the CLI's one-line error."""
    import grpc

    from joblet.client.connection import translate_rpc_error

    try:
        return method(request, **kw)
    except grpc.RpcError as exc:
        raise translate_rpc_error(exc, address) from exc


def stream(address: str, method: Callable[..., Any], request: Any) -> Iterator[Any]:
    import grpc

    from joblet.client.connection import translate_rpc_error

    responses = method(request)
    try:
        yield from responses
    except grpc.RpcError as exc:
        raise translate_rpc_error(exc, address) from exc
    finally:
        responses.cancel()


def is_terminal(ctx: CommandContext) -> bool:
    isatty = getattr(ctx.out, "isatty", None)
    return bool(isatty and isatty())


def sample_time(sample: pb.JobMetricsSample) -> str:
    return datetime.fromtimestamp(sample.timestamp / 1e9, UTC).astimezone().strftime("%H:%M:%S")


LINE_HEADERS = ["TIME", "CPU%", "MEMORY", "MEM%", "IO READ/s", "IO WRITE/s", "NET RX/s"]
LINE_HEADERS += ["NET TX/s", "PIDS"]


def sample_row(s: pb.JobMetricsSample) -> list[str]:
    return [
        sample_time(s), f"{s.cpu.usagePercent:.1f}", human_bytes(s.memory.current),
        f"{s.memory.usagePercent:.1f}", human_bytes(s.io.readBPS), human_bytes(s.io.writeBPS),
        human_bytes(s.network.rxBPS), human_bytes(s.network.txBPS), str(s.process.current),
    ]  # fmt: skip


def render_sample(s: pb.JobMetricsSample) -> str:
    """The full view of one sample, for the in-place terminal table."""
    c, m, io, n, p = s.cpu, s.memory, s.io, s.network, s.process
    limit = human_bytes(m.max) if m.max else "unlimited"
    rows = [
        ["CPU", f"{c.usagePercent:.1f}% of a core", f"throttled {c.throttlePercent:.1f}%",
         f"user {c.userUsec / 1e6:.2f}s  system {c.systemUsec / 1e6:.2f}s"],
        ["Memory", f"{human_bytes(m.current)} / {limit}", f"{m.usagePercent:.1f}%",
         f"anon {human_bytes(m.anon)}  file {human_bytes(m.file)}  oom kills {m.oomKill}"],
        ["IO", f"read {human_bytes(io.readBPS)}/s", f"write {human_bytes(io.writeBPS)}/s",
         f"total read {human_bytes(io.totalReadBytes)}  write {human_bytes(io.totalWriteBytes)}"],
        ["Network", f"rx {human_bytes(n.rxBPS)}/s", f"tx {human_bytes(n.txBPS)}/s",
         f"total rx {human_bytes(n.totalRxBytes)}  tx {human_bytes(n.totalTxBytes)}"],
        ["Processes", f"{p.current} / {p.max or 'unlimited'}", f"threads {p.threads}",
         f"running {p.running}  sleeping {p.sleeping}  fds {p.openFDs}"],
    ]  # fmt: skip
    head = f"Job {s.jobId}  {sample_time(s)}  (every {s.sampleIntervalSeconds}s)"
    return f"{head}\ncgroup: {s.cgroupPath or '-'}\n\n" + format_table(["", "", "", ""], rows)


def render_summary(res: pb.JobMetricsSummaryResponse) -> str:
    def row(name: str, agg: pb.JobMetricsAggregate, fmt: Callable[[float], str]) -> list[str]:
        values = (agg.min, agg.avg, agg.p50, agg.p95, agg.p99, agg.max)
        return [name, *(fmt(v) for v in values)]

    def pct(v: float) -> str:
        return f"{v:.1f}%"

    def rate(v: float) -> str:
        return f"{human_bytes(v)}/s"

    rows = [row("cpu", res.cpu, pct), row("memory", res.memory, human_bytes)]
    rows += [row("io", res.io, rate), row("network", res.network, rate)]
    return format_table(["", "MIN", "AVG", "P50", "P95", "P99", "MAX"], rows)


def job_metrics(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc
    from joblet.cli.many_jobs import resolve_job

    found = resolve_job(ctx)
    ctx = found.ctx
    args = ctx.args
    with open_channel(ctx) as (channel, address):
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        if args.summary:
            req = pb.JobMetricsSummaryRequest(uuid=args.uuid, periodSeconds=args.period)
            res = call(address, stub.GetJobMetricsSummary, req, timeout=30)
            if ctx.json:
                ctx.print_json(res)
            else:
                ctx.print(render_summary(res))
            return found.exit_code
        show_stream(
            ctx, stream(address, stub.StreamJobMetrics, pb.JobMetricsRequest(uuid=args.uuid))
        )
    return found.exit_code


def show_stream(ctx: CommandContext, samples: Iterator[pb.JobMetricsSample]) -> None:
    live, first = is_terminal(ctx) and not ctx.json, True
    for sample in samples:
        if ctx.json:
            ctx.print_json(sample)
        elif live:
            print(CLEAR + escape_text(render_sample(sample)), file=ctx.out, flush=True)
        else:
            table = format_table(LINE_HEADERS, [sample_row(sample)]).splitlines()
            ctx.print("\n".join(table if first else table[1:]), flush=True)
        first = False


def add_commands(subparsers: Subparsers, parents: list[RnxArgumentParser]) -> None:
    """Register `metrics` on the `rnx job` actions."""
    help_text = JOB_ACTIONS["metrics"]
    parser = subparsers.add_parser(
        "metrics", help=help_text, description=help_text, parents=parents
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `rnx job metrics`."""
    parser.add_argument("uuid", metavar="JOB", help="job ID, a unique prefix of one, or a job name")
    parser.add_argument("--summary", action="store_true", help="min/avg/percentiles/max instead")
    parser.add_argument(
        "--period", type=_seconds, default=0, metavar="DURATION",
        help='with --summary: the last DURATION of the job, e.g. "10m" (default: all)',
    )  # fmt: skip
    parser.set_defaults(handler=job_metrics)


def _seconds(text: str) -> int:
    """A period: whole seconds ("90") or a duration ("10m", "1h")."""
    from joblet.cli.units import whole_seconds

    return whole_seconds(text)
