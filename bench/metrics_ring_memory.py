"""Memory of the recent metric samples a daemon keeps for its running jobs.

    .venv/bin/python bench/metrics_ring_memory.py [--quick]

A MetricsHub (with a history source, as the daemon's persist is) is given
an hour of samples (720, one each 5 s) for each of 2,000 jobs (--quick:
500), the samples built as a v1 job's sampler builds them (cgroup, memory,
IO of one disk, processes, limits). Figure: the growth of this process's
RSS, per job, with the default `metrics.recentSamples`; baseline, same run
in a fresh process: the same with the rings bounded per job only (before
recentSamples). Target: the rings' share of the architecture's 10 MB per
100 running jobs, i.e. well under 100 KB per job.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import psutil
from common import Report, parse_args

SAMPLES_PER_JOB = 720


def sample_bytes(job: str, t: int) -> object:
    from joblet.api import joblet_pb2 as pb

    return pb.JobMetricsSample(
        jobId=job,
        timestamp=t * 5_000_000_000,
        sampleIntervalSeconds=5,
        cgroupPath=f"/sys/fs/cgroup/memory/joblet/job-{job}",
        cpu=pb.JobCPUMetrics(usagePercent=t % 97 * 1.01, usageUsec=t * 9_000, userUsec=t * 7_000),
        memory=pb.JobMemoryMetrics(current=50_000_000 + t * 4_096, anon=30_000_000 + t),
        io=pb.JobIOMetrics(
            totalReadBytes=t * 4_096,
            totalWriteBytes=t * 8_192,
            devices={"254:0": pb.DeviceIOMetrics(readBytes=t * 4_096, writeBytes=t * 8_192)},
        ),
        process=pb.JobProcessMetrics(current=2, threads=2, sleeping=2, openFDs=4, maxFDs=1024),
    )


async def fill(jobs: int, recent: int) -> float:
    from joblet.metrics.config import MetricsConfig
    from joblet.metrics.hub import MetricsHub

    class NoHistory:  # a source: what rings give up would be read from it
        async def history(self, job_id: str, from_ns: int, to_ns: int) -> list[object]:
            return []

    names = [f"{k:08d}-0000-4000-8000-000000000000" for k in range(jobs)]
    process = psutil.Process()
    config = MetricsConfig(recent_samples=recent)
    async with MetricsHub(config, history_source=NoHistory(), max_jobs=jobs) as hub:  # type: ignore[arg-type]
        before = process.memory_info().rss
        for t in range(1, SAMPLES_PER_JOB + 1):
            for name in names:
                hub.publish(sample_bytes(name, t))  # type: ignore[arg-type]
        return (process.memory_info().rss - before) / jobs


def child(jobs: int, recent: int) -> float:
    argv = [sys.executable, __file__, "--child", str(jobs), str(recent)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(asyncio.run(fill(int(sys.argv[2]), int(sys.argv[3])))))
        return
    args = parse_args(__doc__ or "")
    from joblet.metrics.config import DEFAULT_RECENT_SAMPLES

    jobs = 500 if args.quick else 2_000
    report = Report("metrics_ring_memory", args.quick)
    bounded = child(jobs, DEFAULT_RECENT_SAMPLES)
    per_job_only = child(jobs, jobs * SAMPLES_PER_JOB)
    report.figures["KB per job, an hour of samples, recentSamples default"] = bounded / 1024
    report.baselines["KB per job, rings bounded per job only"] = per_job_only / 1024
    report.check("rings per job", bounded < 25 * 1024, "< 25 KB (a quarter of 100 KB)")
    report.emit()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
