"""The Prometheus endpoint: pure rendering, and a real HTTP GET on loopback."""

from __future__ import annotations

import asyncio

from joblet.api import joblet_pb2 as pb
from joblet.metrics.config import PrometheusConfig
from joblet.metrics.host import HostCollector
from joblet.metrics.hub import MetricsHub
from joblet.metrics.prometheus import PrometheusExporter, escape, render_job
from joblet.resources.interface import Limits
from joblet.resources.null import NullCgroupManager


async def http_get(port: int, path: str, method: str = "GET") -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return head.split("\r\n")[0], body


def test_job_gauges_have_stable_names_and_escaped_labels() -> None:
    s = pb.JobMetricsSample(jobId="j1", cpu=pb.JobCPUMetrics(usagePercent=49.5))
    s.memory.current = 200 << 20
    text = render_job([(s, 'a "b"\n')])
    assert "# TYPE joblet_job_cpu_usage_percent gauge" in text
    assert 'joblet_job_cpu_usage_percent{job_id="j1",job_name="a \\"b\\"\\n"} 49.5' in text
    assert (
        f'joblet_job_memory_current_bytes{{job_id="j1",job_name="a \\"b\\"\\n"}} {200 << 20}'
        in text
    )
    assert escape("a\\b") == "a\\\\b"


async def test_metrics_endpoint_over_loopback_http() -> None:
    group = NullCgroupManager("test").create("job-p", Limits())
    async with MetricsHub() as hub:
        hub.start_job("job-p", group, Limits())
        hub.publish(pb.JobMetricsSample(jobId="job-p", cpu=pb.JobCPUMetrics(usagePercent=12.5)))
        config = PrometheusConfig(enabled=True, host="127.0.0.1", port=0)
        collector = HostCollector("node-1")
        async with PrometheusExporter(hub, collector, config, job_name=lambda j: "named") as exp:
            status, body = await http_get(exp.port, "/metrics")
            assert status == "HTTP/1.1 200 OK"
            assert 'joblet_job_cpu_usage_percent{job_id="job-p",job_name="named"} 12.5' in body
            total = next(x for x in body.splitlines() if x.startswith("joblet_host_memory_total"))
            assert float(total.split()[1]) > 0
            assert 'joblet_host_load_average{period="1m"}' in body
            assert (await http_get(exp.port, "/other"))[0].startswith("HTTP/1.1 404")
            assert (await http_get(exp.port, "/metrics", "POST"))[0].startswith("HTTP/1.1 405")
        await hub.finish_job("job-p")
        hub.publish(pb.JobMetricsSample(jobId="job-p"))
        assert hub.live_jobs() == []
