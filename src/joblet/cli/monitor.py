"""`rnx monitor status | top | watch`: the host as the daemon sees it.

`watch` redraws in place in a terminal and prints one line per reading when
piped (or with --json, one JSON object per reading).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from joblet.cli.commands import TOP_LEVEL
from joblet.cli.context import CommandContext
from joblet.cli.metrics import CLEAR, call, is_terminal, open_channel, stream
from joblet.cli.output import format_table
from joblet.cli.parser import RnxArgumentParser
from joblet.cli.terminal import escape_text
from joblet.client.errors import EXIT_USAGE, CliError
from joblet.client.progress_text import human_bytes

if TYPE_CHECKING:
    import grpc

    from joblet.api import joblet_pb2 as pb
    from joblet.cli.parser import Subparsers

METRIC_TYPES = ("cpu", "memory", "disk", "network", "io", "process")


def render_status(res: pb.SystemStatusRes) -> str:
    h, v = res.host, res.server_version
    lines = [
        f"Host:    {h.hostname} ({h.platform} {h.platformVersion}, kernel {h.kernelVersion}, "
        f"{h.architecture})",
        f"Node:    {h.nodeId or '-'}   uptime {h.uptime // 3600}h{h.uptime % 3600 // 60:02d}m",
        f"Server:  {v.component} {v.version} ({v.platform})",
        f"Cloud:   {res.cloud.provider or '-'}  hypervisor {res.cloud.hypervisorType or '-'}",
        "",
        *render_metrics_block(res.cpu, res.memory, res.disks, res.networks, res.io),
        "",
        render_processes_line(res.processes),
    ]
    return "\n".join(lines)


def render_metrics_block(
    cpu: pb.CPUMetrics,
    mem: pb.MemoryMetrics,
    disks: Sequence[pb.DiskMetrics],
    nets: Sequence[pb.NetworkMetrics],
    io: pb.IOMetrics,
) -> list[str]:
    load = " ".join(f"{x:.2f}" for x in cpu.loadAverage) or "-"
    cores = " ".join(f"{x:.0f}" for x in cpu.perCoreUsage)
    out = [
        f"CPU:     {cpu.usagePercent:.1f}% of {cpu.cores} cores  load {load}  per core [{cores}]",
        f"Memory:  {human_bytes(mem.usedBytes)} / {human_bytes(mem.totalBytes)} "
        f"({mem.usagePercent:.1f}%)  available {human_bytes(mem.availableBytes)}  "
        f"swap {human_bytes(mem.swapUsed)} / {human_bytes(mem.swapTotal)}",
        f"IO:      read {human_bytes(io.readRate)}/s  write {human_bytes(io.writeRate)}/s",
    ]
    if disks:
        rows = [
            [d.mountPoint, d.device, d.filesystem, human_bytes(d.usedBytes),
             human_bytes(d.totalBytes), f"{d.usagePercent:.1f}%", f"{d.inodesUsagePercent:.1f}%"]
            for d in disks
        ]  # fmt: skip
        out += ["", format_table(["MOUNT", "DEVICE", "FS", "USED", "SIZE", "USE%", "INODE%"], rows)]
    if nets:
        rows = [
            [n.interface, human_bytes(n.receiveRate) + "/s", human_bytes(n.transmitRate) + "/s",
             ",".join(n.ipAddresses) or "-"]
            for n in nets
        ]  # fmt: skip
        out += ["", format_table(["INTERFACE", "RX", "TX", "ADDRESSES"], rows)]
    return out


def render_processes_line(p: pb.ProcessMetrics) -> str:
    return (
        f"Processes: {p.totalProcesses} ({p.runningProcesses} running, "
        f"{p.sleepingProcesses} sleeping, {p.stoppedProcesses} stopped, "
        f"{p.zombieProcesses} zombie), {p.totalThreads} threads"
    )


def render_top(p: pb.ProcessMetrics) -> str:
    def table(procs: Sequence[pb.ProcessInfo]) -> str:
        rows = [
            [str(x.pid), x.user or "-", f"{x.cpuPercent:.1f}", f"{x.memoryPercent:.1f}",
             human_bytes(x.memoryBytes), x.status, (x.command or x.name)[:80]]
            for x in procs
        ]  # fmt: skip
        return format_table(["PID", "USER", "CPU%", "MEM%", "RSS", "STATUS", "COMMAND"], rows)

    return "\n".join(
        [render_processes_line(p), "", "Top by CPU:", table(p.topByCPU), "",
         "Top by memory:", table(p.topByMemory)]
    )  # fmt: skip


def watch_line(m: pb.SystemMetricsRes, types: Sequence[str]) -> str:
    """One line of a piped `watch`: only the chosen types."""
    parts = [m.timestamp]
    if "cpu" in types:
        parts.append(f"cpu={m.cpu.usagePercent:.1f}%")
    if "memory" in types:
        parts.append(f"mem={m.memory.usagePercent:.1f}%")
    if "io" in types:
        parts.append(f"io_r={m.io.readRate:.0f}B/s io_w={m.io.writeRate:.0f}B/s")
    if "network" in types:
        rx, tx = sum(n.receiveRate for n in m.networks), sum(n.transmitRate for n in m.networks)
        parts.append(f"net_rx={rx:.0f}B/s net_tx={tx:.0f}B/s")
    if "disk" in types:
        parts.append("disk=" + ",".join(f"{d.mountPoint}:{d.usagePercent:.0f}%" for d in m.disks))
    if "process" in types:
        parts.append(f"procs={m.processes.totalProcesses}")
    return " ".join(parts)


def render_watch(m: pb.SystemMetricsRes, types: Sequence[str]) -> str:
    block = render_metrics_block(m.cpu, m.memory, m.disks, m.networks, m.io)
    return "\n".join([f"{m.host.hostname}  {m.timestamp}", "", *block, "",
                      render_processes_line(m.processes)])  # fmt: skip


def _system_status(ctx: CommandContext) -> pb.SystemStatusRes:
    with open_channel(ctx) as (channel, address):
        return _ask_status(channel, address)


def _ask_status(channel: grpc.Channel, address: str) -> pb.SystemStatusRes:
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc

    stub = pb_grpc.MonitoringServiceStub(channel)  # type: ignore[no-untyped-call]
    res: pb.SystemStatusRes = call(address, stub.GetSystemStatus, pb.EmptyRequest(), timeout=30)
    return res


def status(ctx: CommandContext) -> int:
    if ctx.many_nodes:
        from joblet.cli.many_lists import status_many

        return status_many(ctx, _ask_status)
    res = _system_status(ctx)
    if ctx.json:
        ctx.print_json(res)
    else:
        ctx.print(render_status(res))
    return 0


def top(ctx: CommandContext) -> int:
    """In a terminal: redraw every --interval seconds until interrupted. Piped,
    with --json or --once: one reading, then exit (like `top -b -n 1`)."""
    if ctx.json or ctx.args.once or not is_terminal(ctx):
        res = _system_status(ctx)
        if ctx.json:
            ctx.print_json(res.processes)
        else:
            ctx.print(render_top(res.processes))
        return 0
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc

    request = pb.StreamMetricsReq(intervalSeconds=ctx.args.interval, metricTypes=TOP_TYPES)
    with open_channel(ctx) as (channel, address):
        stub = pb_grpc.MonitoringServiceStub(channel)  # type: ignore[no-untyped-call]
        readings: Iterator[pb.SystemMetricsRes] = stream(address, stub.StreamSystemMetrics, request)
        for m in readings:
            print(CLEAR + escape_text(render_top_screen(m)), file=ctx.out, flush=True)
    return 0


TOP_TYPES = ["cpu", "memory", "process"]


def render_top_screen(m: pb.SystemMetricsRes) -> str:
    c, mem = m.cpu, m.memory
    load = " ".join(f"{x:.2f}" for x in c.loadAverage) or "-"
    head = (
        f"{m.host.hostname}  {m.timestamp}  cpu {c.usagePercent:.1f}% of {c.cores}  "
        f"load {load}  mem {human_bytes(mem.usedBytes)} / {human_bytes(mem.totalBytes)}"
    )
    return head + "\n\n" + render_top(m.processes)


def watch(ctx: CommandContext) -> int:
    from joblet.api import joblet_pb2 as pb
    from joblet.api import joblet_pb2_grpc as pb_grpc

    types = parse_filter(ctx.args.filter)
    request = pb.StreamMetricsReq(intervalSeconds=ctx.args.interval, metricTypes=types)
    live = is_terminal(ctx) and not ctx.json
    with open_channel(ctx) as (channel, address):
        stub = pb_grpc.MonitoringServiceStub(channel)  # type: ignore[no-untyped-call]
        readings: Iterator[pb.SystemMetricsRes] = stream(address, stub.StreamSystemMetrics, request)
        for m in readings:
            if ctx.json:
                ctx.print_json(m)
            elif live:
                print(CLEAR + escape_text(render_watch(m, types)), file=ctx.out, flush=True)
            else:
                ctx.print(watch_line(m, types), flush=True)
    return 0


def parse_filter(text: str | None) -> list[str]:
    """'cpu,memory' to ['cpu', 'memory']; none: every type."""
    if not text:
        return list(METRIC_TYPES)
    types = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = sorted(set(types) - set(METRIC_TYPES))
    if unknown:
        raise CliError(
            f"unknown metric types {', '.join(unknown)} (known: {', '.join(METRIC_TYPES)})",
            EXIT_USAGE,
        )
    return types


def _interval(text: str) -> int:
    """Seconds between readings: "5" or a duration ("30s", "2m")."""
    from joblet.cli.units import whole_seconds

    value = whole_seconds(text)
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be 1..3600 seconds")
    return value


def add_commands(subparsers: Subparsers, parents: list[RnxArgumentParser]) -> None:
    """Register `monitor` and its actions on the top-level commands."""
    monitor = subparsers.add_parser("monitor", help=TOP_LEVEL["monitor"], parents=parents)
    add_actions(monitor, parents)


def add_actions(monitor: argparse.ArgumentParser, parents: list[RnxArgumentParser]) -> None:
    """The actions of `rnx monitor`."""
    actions = monitor.add_subparsers(metavar="ACTION", required=True)
    help_text = "show the host's status"
    parser = actions.add_parser("status", help=help_text, description=help_text, parents=parents)
    parser.set_defaults(handler=status)
    help_text = "top processes by CPU and by memory (refreshing in a terminal)"
    parser = actions.add_parser("top", help=help_text, description=help_text, parents=parents)
    parser.add_argument(
        "--interval", type=_interval, default=2, metavar="DURATION", help='e.g. "2" or "30s"'
    )
    parser.add_argument("--once", action="store_true", help="one reading, then exit")
    parser.set_defaults(handler=top)
    help_text = "watch host metrics (live)"
    parser = actions.add_parser("watch", help=help_text, description=help_text, parents=parents)
    parser.add_argument(
        "--interval", type=_interval, default=5, metavar="DURATION", help='e.g. "5" or "1m"'
    )
    parser.add_argument(
        "--filter", metavar="TYPES", help=f"comma-separated: {','.join(METRIC_TYPES)}"
    )
    parser.set_defaults(handler=watch)
