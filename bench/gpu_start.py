"""GPU job start: a --gpu=1 job against the same job without GPU, one daemon.

    .venv/bin/python bench/gpu_start.py [--quick]

A static inventory of two fake GPUs (device nodes made with mknod, no driver
behind them: joblet.testing.gpus). For `echo hi` with network none, RunJob
sent -> first output byte, alternating a plain job and a gpu_count=1 job so
both series see the same load. The GPU job's extra work: its allocation, a
GPU wait check, its device rules, four more /dev binds, its environment and
the driver's files (a fake driver tree through gpu.driverPaths: a tmpfs at
/usr/local/nvidia over a skeleton overlay, four read-only binds).
Target: GPU p50 <= plain p50 + 5 ms.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from common import Report, describe_ms, p50, p99, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.testing.gpus import make_driver_tree, make_fake_host

WARMUP = 5


def one_start(stub: pb_grpc.JobServiceStub, gpus: int) -> float:
    start = time.perf_counter()
    job = stub.RunJob(pb.RunJobRequest(command="echo", args=["hi"], network="none", gpu_count=gpus))
    chunks = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid))
    first = next(chunks).payload
    elapsed = time.perf_counter() - start
    output = first + b"".join(c.payload for c in chunks)
    if output != b"hi\n":
        raise AssertionError(f"job printed {output!r}")
    # Its GPU goes back once its cgroup is gone: wait, so the next one never queues.
    while stub.GetJobStatus(pb.GetJobStatusReq(uuid=job.jobUuid)).status == "RUNNING":
        time.sleep(0.001)
    stub.DeleteJob(pb.DeleteJobReq(uuid=job.jobUuid))
    return elapsed


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 40 if args.quick else 200
    report = Report("gpu_start", args.quick)
    host = Path(tempfile.mkdtemp(prefix="joblet-fake-gpus-"))
    try:
        section = make_fake_host(host)
        # The driver's files as a GPU job gets them: a tmpfs at
        # /usr/local/nvidia (over a skeleton overlay) and four binds.
        section["driverPaths"] = [str(make_driver_tree(host / "driver"))]
        with running_daemon({"gpu": section}) as daemon:
            stub = daemon.jobs()
            for _ in range(WARMUP):
                one_start(stub, 0), one_start(stub, 1)
            plain, gpu = [], []
            for _ in range(runs):
                plain.append(one_start(stub, 0))
                gpu.append(one_start(stub, 1))
    finally:
        shutil.rmtree(host, ignore_errors=True)
    print("no GPU  ", describe_ms(plain))
    print("--gpu=1 ", describe_ms(gpu))
    report.figures = {
        "gpu_p50_ms": p50(gpu) * 1e3,
        "gpu_p99_ms": p99(gpu) * 1e3,
        "gpu_minus_plain_p50_ms": (p50(gpu) - p50(plain)) * 1e3,
    }
    report.baselines = {"plain_p50_ms": p50(plain) * 1e3, "plain_p99_ms": p99(plain) * 1e3}
    report.check("gpu p50", p50(gpu) <= p50(plain) + 0.005, "--gpu=1 <= no GPU + 5 ms")
    report.emit()


if __name__ == "__main__":
    main()
