"""GetJobMetricsHistory and GetJobMetricsSummary p99 through a real daemon, for a
job with 24 h of 5 s samples (17,280) stored in persist (issue 5). Target <= 50 ms.

A finished job's history is filled with realistic samples (every CPU and memory
field set, one block device, `lo`; about 500 bytes each, 8.7 MB in all) sent to
persist over its IPC socket, as the daemon's metrics sink does. Then a client
times each RPC from call to the decoded response. Baseline, same run: the same
bytes decoded as one JobMetricsHistoryResponse in this process (no RPC at all).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import grpc
from common import Report, describe_ms, p50, p99, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.daemon import metrics_rpc
from joblet.metrics.config import MetricsConfig
from joblet.metrics.history import PersistHistory
from joblet.metrics.hub import MetricsHub
from joblet.persist.client import PersistClient

DAY_SAMPLES = 24 * 3600 // 5
NS = 1_000_000_000


def sample(job_id: str, i: int, start_ns: int) -> bytes:
    s = pb.JobMetricsSample(
        jobId=job_id, timestamp=start_ns + i * 5 * NS, sampleIntervalSeconds=5,
        cgroupPath=f"/sys/fs/cgroup/memory/joblet/job-{job_id}",
        limits=pb.JobResourceLimits(cpu=50, memory=1 << 30),
    )  # fmt: skip
    for msg, base in ((s.cpu, 123_456_789), (s.memory, 223_456_789)):
        for f in msg.DESCRIPTOR.fields:
            if f.type == f.TYPE_DOUBLE:
                setattr(msg, f.name, float(i % 97))
            elif f.type in (f.TYPE_INT64, f.TYPE_UINT64, f.TYPE_INT32):
                setattr(msg, f.name, base + i)
    s.io.devices["8:0"].CopyFrom(
        pb.DeviceIOMetrics(
            device="8:0", readBytes=1 << 30, writeBytes=1 << 29, readOps=i, writeOps=2 * i
        )
    )
    s.io.totalReadBytes, s.io.totalWriteBytes, s.io.readBPS, s.io.writeBPS = (
        1 << 30,
        1 << 29,
        float(i),
        2.0,
    )
    s.network.interfaces["lo"].CopyFrom(
        pb.NetworkInterfaceMetrics(interface="lo", rxBytes=10 << 20, txBytes=10 << 20)
    )
    s.network.totalRxBytes, s.network.rxBPS = 10 << 20, float(i % 13)
    s.process.current, s.process.threads, s.process.openFDs, s.process.maxFDs = 3, 5, 12, 1024
    return s.SerializeToString()


async def fill(socket_path: object, job_id: str, payloads: list[tuple[int, bytes]]) -> None:
    async with PersistClient(socket_path) as client:  # type: ignore[arg-type]
        for ts, payload in payloads:
            client.send_metric(job_id, ts, payload)
        await client.flush(60)


def time_calls(call: object, request: object, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call(request, timeout=60)  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return times


class RawServer:
    """GetJobMetricsHistory through `metrics_rpc.raw_history_handler` on an
    in-process grpc.aio server (its own thread and loop), over a hub whose
    history source is persist (`PersistHistory`) or, with `memory`, the hub's
    own complete ring: the path this issue adds, before server.py wires it."""

    def __init__(self, persist_socket: Path | None, memory: list[bytes] | None = None) -> None:
        self._persist, self._memory = persist_socket, memory
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        self._ready.wait(30)

    async def _serve(self) -> None:
        source = PersistHistory(self._persist) if self._persist else None
        async with MetricsHub(
            MetricsConfig(history_samples=DAY_SAMPLES + 100), history_source=source
        ) as hub:
            for payload in self._memory or ():
                hub.publish(pb.JobMetricsSample.FromString(payload))
            server = grpc.aio.server(options=[("grpc.max_send_message_length", 64 << 20)])
            pb_grpc.add_JobServiceServicer_to_server(pb_grpc.JobServiceServicer(), server)  # type: ignore[no-untyped-call]
            handler = metrics_rpc.raw_history_handler(lambda uuid: uuid, hub)
            server.add_registered_method_handlers(
                "joblet.JobService", {"GetJobMetricsHistory": handler}
            )
            self.port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await server.stop(None)
            if source is not None:
                await source.close()

    def stub(self) -> pb_grpc.JobServiceStub:
        channel = grpc.insecure_channel(
            f"127.0.0.1:{self.port}", options=[("grpc.max_receive_message_length", 64 << 20)]
        )
        return pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 10 if args.quick else 40
    report = Report("metrics_history", args.quick)
    with running_daemon() as daemon:
        # A 24 h history is ~8.6 MB: over gRPC's default 4 MiB receive limit.
        channel = grpc.secure_channel(
            daemon.address,
            daemon.credentials(),
            options=[("grpc.max_receive_message_length", 64 << 20)],
        )
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        job_id = stub.RunJob(pb.RunJobRequest(command="true")).jobUuid
        while stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status not in (
            "COMPLETED",
            "FAILED",
        ):
            time.sleep(0.05)
        start = time.time_ns() - (DAY_SAMPLES + 10) * 5 * NS
        payloads = [(start + i * 5 * NS, sample(job_id, i, start)) for i in range(DAY_SAMPLES)]
        asyncio.run(fill(daemon.root / "run" / "persist-ipc.sock", job_id, payloads))
        request = pb.JobMetricsHistoryRequest(uuid=job_id)
        deadline = time.monotonic() + 60
        while (
            len(stub.GetJobMetricsHistory(request).samples) < DAY_SAMPLES
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        got = len(stub.GetJobMetricsHistory(request).samples)
        report.figures["samples returned"] = got
        last_hour = pb.JobMetricsHistoryRequest(
            uuid=job_id, fromTimestamp=(start // NS) + 23 * 3600
        )
        summary = pb.JobMetricsSummaryRequest(uuid=job_id)
        cases = {
            "history 24 h": (stub.GetJobMetricsHistory, request),
            "history last 1 h": (stub.GetJobMetricsHistory, last_hour),
            "summary 24 h": (stub.GetJobMetricsSummary, summary),
        }
        for name, (call, req) in cases.items():
            times = time_calls(call, req, runs)
            print(f"{name}: {describe_ms(times)}")
            report.figures[f"{name} p50 ms"] = 1000 * p50(times)
            report.figures[f"{name} p99 ms"] = 1000 * p99(times)
            report.check(f"{name} p99", 1000 * p99(times) <= 50, "<= 50 ms")
        for label, server in (
            ("raw path, from persist", RawServer(daemon.root / "run" / "persist-grpc.sock")),
            ("raw path, from memory", RawServer(None, [p for _, p in payloads])),
        ):
            try:
                raw_stub = server.stub()
                assert len(raw_stub.GetJobMetricsHistory(request).samples) >= DAY_SAMPLES
                times = time_calls(raw_stub.GetJobMetricsHistory, request, runs)
            finally:
                server.close()
            print(f"history 24 h, {label}: {describe_ms(times)}")
            report.figures[f"history 24 h {label} p50 ms"] = 1000 * p50(times)
            report.figures[f"history 24 h {label} p99 ms"] = 1000 * p99(times)
            report.check(f"history 24 h {label} p99", 1000 * p99(times) <= 50, "<= 50 ms")
        joined = b"".join(
            pb.JobMetricsHistoryResponse(
                samples=[pb.JobMetricsSample.FromString(p) for _, p in payloads]
            ).SerializeToString()
            for _ in range(1)
        )
        decode = []
        for _ in range(runs):
            t0 = time.perf_counter()
            pb.JobMetricsHistoryResponse.FromString(joined)
            decode.append(time.perf_counter() - t0)
        report.baselines["decode 24 h response p50 ms"] = 1000 * p50(decode)
        report.notes.append(f"24 h response is {len(joined) / 1e6:.1f} MB, {got} samples")
    report.check("all samples returned", got >= DAY_SAMPLES, f">= {DAY_SAMPLES}")
    report.emit()


if __name__ == "__main__":
    main()
