# ruff: noqa: E501
"""Benchmarks of the metric sampler (run as root on a cgroup host: `python bench/metrics_sampler.py`).

1. Sampler CPU cost per job: 100 job cgroups, each with one sleeping process,
   sampled at a 1 s interval by a MetricsHub for N seconds; the daemon-side
   CPU time (process user+system) divided by jobs x seconds. Target <= 0.5 %
   of one core per job.
2. Summary and history p99 over 24 h of 5 s samples (17,280) held in the hub.
   Target <= 50 ms each.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

from joblet.api import joblet_pb2 as pb
from joblet.daemon import metrics_rpc
from joblet.metrics.config import MetricsConfig
from joblet.metrics.hub import MetricsHub
from joblet.resources._fs import walk_groups
from joblet.resources.cleanup import cleanup_leftovers
from joblet.resources.detect import create_cgroup_manager, detect_layout
from joblet.resources.interface import JobCgroup, Limits

ROOT = Path("/sys/fs/cgroup")
JOBS = int(os.environ.get("BENCH_JOBS", "100"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
DAY_SAMPLES = 24 * 3600 // 5


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def spawn(group: JobCgroup) -> subprocess.Popen[bytes]:
    files = " ".join(str(p) for p in group.procs_files())
    script = f'for f in {files}; do echo $$ > "$f"; done; exec sleep 600'
    return subprocess.Popen(["sh", "-c", script])


async def sampler_cost(groups: list[JobCgroup], pids: list[int]) -> float:
    async with MetricsHub(MetricsConfig(interval_s=1.0)) as hub:
        for group, pid in zip(groups, pids, strict=True):
            hub.start_job(group.job_id, group, Limits(), pid)
        await asyncio.sleep(1.5)  # baselines taken
        before, t0 = cpu_seconds(), time.monotonic()
        await asyncio.sleep(SECONDS)
        used, elapsed = cpu_seconds() - before, time.monotonic() - t0
        samples = sum(len(hub.recent(g.job_id)) for g in groups)
        for group in groups:
            await hub.finish_job(group.job_id)
    print(f"samples taken: {samples} ({samples / len(groups) / elapsed:.2f}/s per job)")
    return 100.0 * used / elapsed / len(groups)


def bench_sampler() -> None:
    if os.geteuid() != 0 or detect_layout(ROOT).version == "none":
        print("sampler benchmark skipped: needs root and cgroups")
        return
    parent = f"joblet-bench-{uuid.uuid4().hex[:8]}"
    manager = create_cgroup_manager(ROOT, parent)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        groups = [manager.create(str(uuid.uuid4()), Limits()) for _ in range(JOBS)]
        procs = [spawn(g) for g in groups]
        time.sleep(0.5)
        pct = asyncio.run(sampler_cost(groups, [p.pid for p in procs]))
        print(f"sampler CPU per job at 1 s, {JOBS} jobs: {pct:.3f} % of one core (target <= 0.5)")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        cleanup_leftovers(manager)
        for hierarchy in sorted(set(detect_layout(ROOT).controllers.values())):
            for group in reversed(walk_groups(hierarchy / parent)):
                group.rmdir()


def day_of_samples() -> list[pb.JobMetricsSample]:
    start = time.time_ns() - DAY_SAMPLES * 5 * 10**9
    return [
        pb.JobMetricsSample(
            jobId="j",
            timestamp=start + i * 5 * 10**9,
            sampleIntervalSeconds=5,
            cpu=pb.JobCPUMetrics(usagePercent=float(i % 100), usageUsec=i * 1000),
            memory=pb.JobMemoryMetrics(current=(i % 512) << 20, anon=i),
            io=pb.JobIOMetrics(readBPS=float(i), writeBPS=float(i % 7)),
            network=pb.JobNetworkMetrics(rxBPS=float(i % 13), txBPS=1.0),
        )
        for i in range(DAY_SAMPLES)
    ]


def p99_ms(times: list[float]) -> float:
    ordered = sorted(times)
    return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def bench_queries(runs: int = 50) -> None:
    async with MetricsHub(MetricsConfig(history_samples=DAY_SAMPLES)) as hub:
        for s in day_of_samples():
            hub.publish(s)
        last_hour = (time.time_ns() // 10**9) - 3600
        timings: dict[str, list[float]] = {
            "summary (24 h)": [],
            "history (24 h)": [],
            "history (1 h)": [],
        }
        for _ in range(runs):
            for name, coro in (
                ("summary (24 h)", metrics_rpc.get_job_metrics_summary(hub, "j", pb.JobMetricsSummaryRequest())),
                ("history (24 h)", metrics_rpc.get_job_metrics_history(hub, "j", pb.JobMetricsHistoryRequest())),
                ("history (1 h)", metrics_rpc.get_job_metrics_history(
                    hub, "j", pb.JobMetricsHistoryRequest(fromTimestamp=last_hour))),
            ):  # fmt: skip
                t0 = time.perf_counter()
                await coro
                timings[name].append(time.perf_counter() - t0)
        for name, times in timings.items():
            print(f"{name} over {DAY_SAMPLES} samples: p99 {p99_ms(times):.1f} ms (target <= 50)")


if __name__ == "__main__":
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    asyncio.run(bench_queries())
    bench_sampler()
