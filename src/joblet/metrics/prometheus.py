"""A Prometheus text endpoint (optional, off by default, loopback by default):
GET /metrics answers the latest sample of every running job and the host's CPU
and memory as gauges under stable names.

    async with PrometheusExporter(hub, collector, config.metrics.prometheus,
                                  job_name=lambda job_id: ...) as exporter:
        ...   # exporter.port is the bound port

The rendering (`render_job`, `render_host`) is pure; the server is a tiny
asyncio one (one request per connection, HTTP/1.0 style), enough for a scraper.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from types import TracebackType

from joblet.api import joblet_pb2 as pb
from joblet.errors import JobletError
from joblet.metrics.config import PrometheusConfig
from joblet.metrics.host import HostCollector
from joblet.metrics.hub import MetricsHub

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READ_TIMEOUT_S = 5.0

# (name, help, value of a sample)
JOB_GAUGES: tuple[tuple[str, str, Callable[[pb.JobMetricsSample], float]], ...] = (
    ("joblet_job_cpu_usage_percent", "CPU use over the last interval, % of one core",
     lambda s: s.cpu.usagePercent),
    ("joblet_job_cpu_throttled_percent", "Share of CFS periods throttled, last interval",
     lambda s: s.cpu.throttlePercent),
    ("joblet_job_memory_current_bytes", "Memory charged to the job's cgroup",
     lambda s: s.memory.current),
    ("joblet_job_memory_max_bytes", "Memory limit of the job (0: none)", lambda s: s.memory.max),
    ("joblet_job_io_read_bytes", "Bytes read from block devices", lambda s: s.io.totalReadBytes),
    ("joblet_job_io_write_bytes", "Bytes written to block devices",
     lambda s: s.io.totalWriteBytes),
    ("joblet_job_network_receive_bytes", "Bytes received in the job's network namespace",
     lambda s: s.network.totalRxBytes),
    ("joblet_job_network_transmit_bytes", "Bytes sent in the job's network namespace",
     lambda s: s.network.totalTxBytes),
    ("joblet_job_pids", "Processes in the job's cgroup", lambda s: s.process.current),
)  # fmt: skip


def escape(value: str) -> str:
    """A label value in the text format (backslash, quote and newline escaped)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _gauge(name: str, help_text: str, rows: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    return lines + [f"{name}{labels} {value:.17g}" for labels, value in rows]


def render_job(samples: Iterable[tuple[pb.JobMetricsSample, str]]) -> str:
    """Job gauges from (latest sample, job name) pairs."""
    pairs = list(samples)
    labelled = [
        (f'{{job_id="{escape(s.jobId)}",job_name="{escape(name)}"}}', s) for s, name in pairs
    ]
    lines: list[str] = []
    for name, help_text, value in JOB_GAUGES:
        lines += _gauge(name, help_text, [(labels, float(value(s))) for labels, s in labelled])
    return "\n".join(lines) + "\n"


def render_host(m: pb.SystemMetricsRes) -> str:
    c, mem = m.cpu, m.memory
    loads = list(c.loadAverage) + [0.0] * 3
    gauges = [
        ("joblet_host_cpu_cores", "CPU cores", [("", float(c.cores))]),
        ("joblet_host_cpu_usage_percent", "Host CPU use, % of all cores",
         [("", c.usagePercent)]),
        ("joblet_host_load_average", "Load average",
         [(f'{{period="{p}"}}', loads[i]) for i, p in enumerate(("1m", "5m", "15m"))]),
        ("joblet_host_memory_total_bytes", "Host memory", [("", float(mem.totalBytes))]),
        ("joblet_host_memory_used_bytes", "Host memory in use", [("", float(mem.usedBytes))]),
        ("joblet_host_memory_available_bytes", "Host memory available",
         [("", float(mem.availableBytes))]),
        ("joblet_host_swap_used_bytes", "Swap in use", [("", float(mem.swapUsed))]),
    ]  # fmt: skip
    lines: list[str] = []
    for name, help_text, rows in gauges:
        lines += _gauge(name, help_text, rows)
    return "\n".join(lines) + "\n"


def http_response(status: str, body: bytes, content_type: str = CONTENT_TYPE) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class PrometheusExporter:
    def __init__(
        self,
        hub: MetricsHub,
        collector: HostCollector,
        config: PrometheusConfig,
        *,
        job_name: Callable[[str], str] = lambda job_id: "",
    ) -> None:
        self._hub, self._collector, self._config = hub, collector, config
        self._job_name = job_name
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> PrometheusExporter:
        self._server = await asyncio.start_server(
            self._handle, self._config.host, self._config.port
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def render(self) -> str:
        samples = []
        for job_id in self._hub.live_jobs():
            latest = self._hub.latest(job_id)
            if latest is not None:
                samples.append((latest, self._name(job_id)))
        host = await asyncio.to_thread(self._collector.metrics, ("cpu", "memory"))
        return render_job(samples) + render_host(host)

    def _name(self, job_id: str) -> str:
        try:
            return self._job_name(job_id)
        except JobletError:  # deleted between the sample and now: the id still tells
            return ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            writer.write(await self._answer(head.split(b"\r\n", 1)[0]))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(self, request_line: bytes) -> bytes:
        parts = request_line.split()
        if len(parts) != 3 or parts[0] != b"GET":
            return http_response("405 Method Not Allowed", b"GET only\n", "text/plain")
        if parts[1].split(b"?")[0] != b"/metrics":
            return http_response("404 Not Found", b"see /metrics\n", "text/plain")
        return http_response("200 OK", (await self.render()).encode())
