"""Log throughput: a job writing 1 GiB to stdout (--quick: 256 MiB), received
by `rnx job log` following it live.

    .venv/bin/python bench/log_throughput.py [--quick]

The clock runs from RunJob to the end of `rnx job log <id>` (started right
after RunJob returns, so it follows the job live), whose stdout is a pipe this
process reads and counts. Baseline: the same `head -c N /dev/zero` read
through a plain pipe by this process. Three runs each; the median is reported.
Target: >= 150 MB/s (MB = 10^6 bytes).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time

from common import Daemon, Report, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

RUNS = 3
READ_SIZE = 1 << 20


def count_pipe(proc: subprocess.Popen[bytes]) -> int:
    assert proc.stdout is not None
    fd, total = proc.stdout.fileno(), 0
    while chunk := os.read(fd, READ_SIZE):
        total += len(chunk)
    if proc.wait() != 0:
        raise AssertionError(f"{proc.args!r} exited {proc.returncode}")
    return total


def _watch_end(stub: pb_grpc.JobServiceStub, uuid: str, start: float, out: list[float]) -> None:
    """Polls (10 ms) until the daemon records the job's end: the writer's side."""
    while stub.GetJobStatus(pb.GetJobStatusReq(uuid=uuid)).status == "RUNNING":
        time.sleep(0.01)
    out.append(time.perf_counter() - start)


def through_joblet(daemon: Daemon, size: int) -> tuple[float, float] | None:
    """MB/s from RunJob to the end of `rnx job log` of the followed job, and
    MB/s from RunJob to the job's recorded end (output written to the log file);
    None when rnx received fewer bytes than the job wrote."""
    stub = daemon.jobs()
    start = time.perf_counter()
    job = stub.RunJob(pb.RunJobRequest(command="head", args=["-c", str(size), "/dev/zero"]))
    rnx = subprocess.Popen(daemon.rnx_argv("job", "log", job.jobUuid), stdout=subprocess.PIPE)
    ended: list[float] = []
    watcher = threading.Thread(target=_watch_end, args=(daemon.jobs(), job.jobUuid, start, ended))
    watcher.start()
    received = count_pipe(rnx)
    elapsed = time.perf_counter() - start
    watcher.join()
    if received != size:
        status = stub.GetJobStatus(pb.GetJobStatusReq(uuid=job.jobUuid))
        print(
            f"SHORT READ: rnx job log gave {received} of {size} bytes; job {job.jobUuid} "
            f"is {status.status} (exit {status.exitCode}); RunJob said {job.status}",
            flush=True,
        )
        return None
    stub.DeleteJob(pb.DeleteJobReq(uuid=job.jobUuid))
    return size / elapsed / 1e6, size / ended[0] / 1e6


def through_pipe(size: int) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(["head", "-c", str(size), "/dev/zero"], stdout=subprocess.PIPE)
    received = count_pipe(proc)
    assert received == size
    return size / (time.perf_counter() - start) / 1e6


def main() -> None:
    args = parse_args(__doc__ or "")
    size = (256 if args.quick else 1024) << 20
    report = Report("log_throughput", args.quick)
    with running_daemon() as daemon:
        tries = [through_joblet(daemon, size) for _ in range(RUNS)]
    pairs = [pair for pair in tries if pair is not None]
    if not pairs:
        raise SystemExit("every run was a short read")
    rates, writer_rates = [r for r, _ in pairs], [w for _, w in pairs]
    pipe_rates = [through_pipe(size) for _ in range(RUNS)]
    print(f"joblet+rnx: {[round(r) for r in rates]} MB/s; pipe: {[round(r) for r in pipe_rates]}")
    report.figures = {
        "mib": size >> 20,
        "rnx_log_mb_per_s": statistics.median(rates),
        "job_end_mb_per_s": statistics.median(writer_rates),
        "vs_pipe": statistics.median(rates) / statistics.median(pipe_rates),
        "short_reads": len(tries) - len(pairs),
    }
    report.baselines = {"python_pipe_mb_per_s": statistics.median(pipe_rates)}
    report.check("throughput", statistics.median(rates) >= 150, ">= 150 MB/s")
    report.check("complete", len(pairs) == len(tries), "rnx receives every byte, every run")
    report.emit()


if __name__ == "__main__":
    main()
