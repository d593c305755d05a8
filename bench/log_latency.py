"""Live log delivery: a job printing a timestamped line every 10 ms for ~5 s
(--quick: 2 s), received by a follower over GetJobLogs.

    .venv/bin/python bench/log_latency.py [--quick]

delay = time the chunk holding the line was received - time.time_ns() the job
printed in it (same host clock). Lines printed before the follower's stream
delivered its first chunk are backlog, not live, and are left out. Baseline:
the same program's output read line by line through a plain pipe by this
process. Target: p99 <= 10 ms.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable

from common import Daemon, Report, describe_ms, p50, p99, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb

PROGRAM = """
import sys, time
end = time.time() + {seconds}
while time.time() < end:
    print(time.time_ns(), flush=True)
    time.sleep(0.01)
"""


def delays(received: Iterable[tuple[int, bytes]]) -> list[float]:
    """Seconds between each complete line's embedded time and its arrival;
    lines embedded before the first arrival are backlog and skipped."""
    samples: list[float] = []
    pending = b""
    first_arrival = None
    for arrival_ns, data in received:
        first_arrival = first_arrival or arrival_ns
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            stamp = int(line)
            if stamp >= first_arrival:
                samples.append((arrival_ns - stamp) / 1e9)
    return samples


def followed(daemon: Daemon, seconds: float) -> list[float]:
    stub = daemon.jobs()
    job = stub.RunJob(
        pb.RunJobRequest(command="python3", args=["-c", PROGRAM.format(seconds=seconds)])
    )
    chunks = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid))
    return delays((time.time_ns(), chunk.payload) for chunk in chunks)


def piped(seconds: float) -> list[float]:
    proc = subprocess.Popen(
        ["python3", "-c", PROGRAM.format(seconds=seconds)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    result = delays((time.time_ns(), line) for line in proc.stdout)
    proc.wait()
    return result


def main() -> None:
    args = parse_args(__doc__ or "")
    seconds = 2.0 if args.quick else 5.0
    report = Report("log_latency", args.quick)
    with running_daemon() as daemon:
        samples = followed(daemon, seconds)
    baseline = piped(seconds)
    print("follower", describe_ms(samples))
    print("pipe    ", describe_ms(baseline))
    report.figures = {
        "lines": len(samples),
        "p50_ms": p50(samples) * 1e3,
        "p99_ms": p99(samples) * 1e3,
        "max_ms": max(samples) * 1e3,
    }
    report.baselines = {"pipe_p50_ms": p50(baseline) * 1e3, "pipe_p99_ms": p99(baseline) * 1e3}
    report.check("p99", p99(samples) <= 0.010, "<= 10 ms")
    report.emit()


if __name__ == "__main__":
    main()
