"""The UI's own app (real middleware, templates, event streams) over a fake
upstream with fixed jobs, ids and times, for screenshots that do not change
from run to run. Only the daemon is fake: it is what makes ids and clocks vary."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from joblet.api import joblet_pb2 as pb
from joblet.ui.app import UiState, build_app
from joblet.ui.config import UiConfig
from joblet.ui.tokens import Redeemer, mint_token

from .ui_support import free_port

KEY = bytes(32)
NODE = "node-0000-fixed"


def _job(n: int, status: str, name: str, command: str, code: int = 0) -> pb.Job:
    return pb.Job(
        uuid=f"{n:08x}-0000-4000-8000-00000000000{n % 10}", name=name, command="sh",
        args=["-c", command], status=status, nodeId=NODE, exitCode=code,
        startTime=f"2026-01-0{1 + n % 3}T10:{n:02d}:00Z",
        endTime=f"2026-01-0{1 + n % 3}T10:{n:02d}:42Z" if status != "RUNNING" else "",
    )  # fmt: skip


JOBS = [
    _job(1, "COMPLETED", "backup", "tar czf /tmp/b.tgz /data"),
    _job(2, "FAILED", "etl-load", "python3 load.py", 3),
    _job(3, "STOPPED", "train", "python3 train.py --epochs 40"),
    _job(4, "COMPLETED", "report", "echo done"),
]


FIXED_NOW = 1767348300.0  # 2026-01-02T10:05:00Z: the UI's clock (the timeline's now)


def _stamp(seconds: float) -> pb.Timestamp:
    return pb.Timestamp(seconds=int(seconds))


def _wave(n: int, period: int, low: float, high: float) -> float:
    """A fixed, smooth-looking series: a triangle wave."""
    phase = (n % period) / period
    return low + (high - low) * (2 * phase if phase < 0.5 else 2 - 2 * phase)


def _sample(n: int) -> pb.JobMetricsSample:
    io = pb.JobIOMetrics(readBPS=_wave(n, 10, 0, 4 << 20), writeBPS=_wave(n + 5, 10, 0, 2 << 20))
    net = pb.JobNetworkMetrics(rxBPS=_wave(n, 8, 0, 80 << 10), txBPS=_wave(n, 12, 0, 30 << 10))
    return pb.JobMetricsSample(
        timestamp=int(FIXED_NOW) - 600 + 5 * n,
        cpu=pb.JobCPUMetrics(usagePercent=_wave(n, 16, 5, 85)),
        memory=pb.JobMemoryMetrics(current=int(_wave(n, 40, 40, 440)) << 20),
        limits=pb.JobResourceLimits(memory=512 << 20), io=io, network=net,
    )  # fmt: skip


def _host_sample(n: int) -> pb.SystemMetricsRes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(FIXED_NOW - 60 + 2 * n))
    names = ("python3", "joblet", "sshd")
    top = [pb.ProcessInfo(pid=100 + i, user="root", name=name, cpuPercent=30 - 7 * i,
                          memoryPercent=4.5 - i) for i, name in enumerate(names)]  # fmt: skip
    cores = [_wave(n + 3 * c, 12, 5, 90) for c in range(4)]
    used = int(_wave(n, 30, 2.5, 3.5) * (1 << 30))
    return pb.SystemMetricsRes(
        timestamp=stamp,
        cpu=pb.CPUMetrics(usagePercent=35, perCoreUsage=cores, loadAverage=[0.8, 0.6, 0.5]),
        memory=pb.MemoryMetrics(totalBytes=8 << 30, usedBytes=used, usagePercent=37.5,
                                swapTotal=2 << 30),
        disks=[pb.DiskMetrics(mountPoint="/", device="/dev/sda1", usedBytes=20 << 30,
                              totalBytes=64 << 30, usagePercent=31.3)],
        networks=[pb.NetworkMetrics(interface="eth0", receiveRate=_wave(n, 10, 1e3, 9e4),
                                    transmitRate=_wave(n, 14, 1e3, 4e4), bytesReceived=5 << 30,
                                    bytesSent=1 << 30)],
        io=pb.IOMetrics(readRate=_wave(n, 9, 0, 3e5), writeRate=_wave(n, 11, 0, 6e5)),
        processes=pb.ProcessMetrics(totalProcesses=212, topByCPU=top, topByMemory=top),
    )  # fmt: skip


class Call:
    """A fake streaming call: iterates the items, can be cancelled."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[Any]:
        for item in self._items:
            yield item

    def cancel(self) -> None:
        pass


async def _answer(message: Any) -> Any:
    return message


class FakeJobs:
    def ListJobPages(self, request: Any, timeout: float = 0) -> Call:
        return Call([pb.JobPage(jobs=JOBS)])

    def GetJobStatus(self, request: Any, timeout: float = 0) -> Any:
        job = next(j for j in JOBS if j.uuid == request.uuid)
        return _answer(pb.GetJobStatusRes(
            uuid=job.uuid, name=job.name, command=job.command, args=job.args, status=job.status,
            startTime=job.startTime, endTime=job.endTime, exitCode=job.exitCode, nodeId=NODE,
            environment={"STAGE": "prod"}, secret_environment={"TOKEN": "hidden"},
            maxMemory=512, workDir="/work", user="0:0",
        ))  # fmt: skip

    def GetJobLogs(self, request: Any, timeout: float = 0) -> Call:
        lines = "".join(f"step {i}: ok\n" for i in range(1, 13))
        return Call([pb.DataChunk(payload=lines.encode())])

    def GetJobMetricsHistory(self, request: Any, timeout: float = 0) -> Any:
        return _answer(pb.JobMetricsHistoryResponse(samples=[_sample(n) for n in range(40)]))

    def GetJobMetricsSummary(self, request: Any, timeout: float = 0) -> Any:
        agg = pb.JobMetricsAggregate
        return _answer(pb.JobMetricsSummaryResponse(
            cpu=agg(min=2, avg=41.5, p50=40, p95=78, p99=85.5, max=88),
            memory=agg(min=40 << 20, avg=210 << 20, p50=205 << 20, p95=400 << 20,
                       p99=430 << 20, max=440 << 20),
            io=agg(min=0, avg=1 << 20, p50=900 << 10, p95=3 << 20, p99=4 << 20, max=5 << 20),
            network=agg(min=0, avg=20 << 10, p50=16 << 10, p95=60 << 10, p99=80 << 10,
                        max=90 << 10),
        ))  # fmt: skip

    def StreamJobMetrics(self, request: Any, timeout: float = 0) -> Call:
        return Call([])

    def ListWorkflows(self, request: Any, timeout: float = 0) -> Any:
        info = pb.WorkflowInfo(uuid="feedface-0000-4000-8000-000000000001", name="nightly",
                               status="RUNNING", totalJobs=4, completedJobs=2)  # fmt: skip
        return _answer(pb.ListWorkflowsResponse(workflows=[info]))

    def GetWorkflowStatus(self, request: Any, timeout: float = 0) -> Any:
        at = FIXED_NOW - 300
        jobs = [
            pb.WorkflowJob(jobUuid=JOBS[0].uuid, jobName="extract", status="COMPLETED",
                           startTime=_stamp(at), endTime=_stamp(at + 70)),
            pb.WorkflowJob(jobUuid=JOBS[3].uuid, jobName="clean", status="COMPLETED",
                           dependencies=["extract"], startTime=_stamp(at + 72),
                           endTime=_stamp(at + 160)),
            pb.WorkflowJob(jobName="load", status="RUNNING", dependencies=["clean"],
                           startTime=_stamp(at + 161)),
            pb.WorkflowJob(jobName="notify", status="PENDING", dependencies=["load", "extract"]),
        ]  # fmt: skip
        info = pb.WorkflowInfo(uuid=request.workflowUuid, name="nightly", status="RUNNING")
        return _answer(pb.GetWorkflowStatusResponse(workflow=info, jobs=jobs))


class FakeLists:
    def ListNetworks(self, request: Any, timeout: float = 0) -> Any:
        return _answer(pb.Networks(networks=[pb.Network(name="bridge", cidr="172.20.0.0/16")]))

    def ListVolumes(self, request: Any, timeout: float = 0) -> Any:
        return _answer(pb.Volumes(volumes=[pb.Volume(name="data", size="1GB", type="filesystem")]))

    def ListRuntimes(self, request: Any, timeout: float = 0) -> Any:
        return _answer(pb.RuntimesRes(runtimes=[pb.RuntimeInfo(name="python-3.11-ml")]))

    def StreamSystemMetrics(self, request: Any, timeout: float = 0) -> Call:
        return Call([_host_sample(n) for n in range(30)])

    def GetSystemStatus(self, request: Any, timeout: float = 0) -> Any:
        return _answer(pb.SystemStatusRes(timestamp="2026-01-01T10:00:00Z", available=True))


@dataclass
class FakeStubs:
    jobs: Any
    networks: Any
    volumes: Any
    monitoring: Any
    runtimes: Any


class FakeUpstream:
    address = "fixed"
    names = ("local",)

    def as_role(self, role: str, node: str = "local") -> FakeStubs:
        lists = FakeLists()
        return FakeStubs(FakeJobs(), lists, lists, lists, lists)

    async def close(self) -> None:
        pass


@dataclass
class FixedUi:
    port: int
    key: bytes = KEY

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, role: str) -> str:
        return mint_token(self.key, role, f"{role}-fixed", FIXED_NOW)


@contextlib.contextmanager
def fixed_ui() -> Iterator[FixedUi]:
    """The app on a free loopback port, in a thread of its own."""
    port = free_port()
    config = UiConfig(port=port)
    state = UiState(config, FakeUpstream(), Redeemer(KEY), clock=lambda: FIXED_NOW)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=0.5)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield FixedUi(port)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
