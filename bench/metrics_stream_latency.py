"""StreamJobMetrics latency: from the moment a sample is read (its
`timestamp`, Unix ns, taken by the sampler) to its arrival at a gRPC client.
A daemon sampling every second (`metrics.interval: 1`) runs `sleep`; one client
streams the job's metrics over mTLS. Same host, same clock.

Baseline, same run: GetJobStatus round trip on the same channel (the transport's
floor for one message)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import (
    Daemon,
    Report,
    _wait_for_port,
    describe_ms,
    p50,
    p99,
    parse_args,
    require_root,
    start_daemon,
)

from joblet.api import joblet_pb2 as pb


def set_interval(config_path: Path, seconds: int) -> None:
    config = yaml.safe_load(config_path.read_text())
    config["metrics"] = {"interval": seconds}
    config_path.write_text(yaml.safe_dump(config))


def main() -> None:
    args = parse_args(__doc__ or "")
    count = 6 if args.quick else 30
    report = Report("metrics_stream_latency", args.quick)
    require_root()
    tmp = Path(tempfile.mkdtemp(prefix="joblet-bench-"))
    try:
        first = start_daemon(tmp / "a")  # writes the root; restarted with the interval
        first.stop()
        shutil.rmtree(tmp / "a" / "root" / "jobs", ignore_errors=True)
        set_interval(first.config_path, 1)
        daemon = start_daemon_again(first)
        try:
            latencies, rtts = measure(daemon, count)
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"sample -> client: {describe_ms(latencies)}")
    print(f"GetJobStatus round trip: {describe_ms(rtts)}")
    report.figures["sample to client p50 ms"] = 1000 * p50(latencies)
    report.figures["sample to client p99 ms"] = 1000 * p99(latencies)
    report.baselines["GetJobStatus round trip p50 ms"] = 1000 * p50(rtts)
    report.notes.append(f"{len(latencies)} samples at a 1 s interval")
    report.emit()


def start_daemon_again(old: Daemon) -> Daemon:
    """`joblet serve` on the same root, port and cgroup parent."""
    argv = [sys.executable, "-m", "joblet.daemon.main", "serve", "--config", str(old.config_path)]
    with old.log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    new = Daemon(old.root, old.port, old.parent, proc, old.log_path)
    _wait_for_port(new.port, proc, new.log_path)
    return new


def measure(daemon: Daemon, count: int) -> tuple[list[float], list[float]]:
    stub = daemon.jobs()
    job_id = stub.RunJob(pb.RunJobRequest(command="sleep", args=["120"])).jobUuid
    while stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id)).status != "RUNNING":
        time.sleep(0.02)
    latencies: list[float] = []
    stream = stub.StreamJobMetrics(pb.JobMetricsRequest(uuid=job_id))
    next(stream)  # the latest sample, already old when the stream starts
    for sample in stream:
        latencies.append((time.time_ns() - sample.timestamp) / 1e9)
        if len(latencies) >= count:
            break
    stream.cancel()
    rtts = []
    for _ in range(50):
        t0 = time.perf_counter()
        stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id))
        rtts.append(time.perf_counter() - t0)
    stub.StopJob(pb.StopJobReq(uuid=job_id))
    return latencies, rtts


if __name__ == "__main__":
    main()
