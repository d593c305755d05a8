"""The CPU a finished short job cannot do without on this host, against the
CPU the throughput targets leave each job.

    .venv/bin/python bench/throughput_floor.py [--quick]

A `true` job through the daemon needs at least: its namespaces and a process
in them; its private root (the part above bare namespaces); its cgroup,
created with the node's default limits and device rules and removed; one
RunJob and one log stream that ends, each an mTLS call that costs its client
and the daemon; and its record stored by the state helper. Each part is
measured here, in this run, on its own and with nothing else of the job's
around it:

- namespaces: `unshare` of the job's namespaces and a network namespace
  running `true`, 32 at a time (as bench/finish_throughput.py's baseline),
  CPU from the children's rusage;
- root: bench/root_build.py's shared root built by a pid 1 of new pid and
  mount namespaces, minus the same processes with no root;
- cgroup: the daemon's cgroup manager creating a job's cgroup and removing
  it (this process's CPU, the kernel's work included);
- calls: GetJobStatus (a unary call) and GetJobLogs of a finished job (a
  stream that ends) from 50 asyncio callers on 5 channels: the client's and
  the daemon's CPU per call;
- record: RunJob scheduled an hour ahead, the state helper's CPU per job
  (it stores the job's record).

Their sum is a floor: every other part of a real job (the launcher, the log
and its copy to persist, the final metrics sample, the exit records) comes on
top. The budget a rate target leaves a job is the host's cores divided by the
rate (300 jobs/s on 2 cores: 6.7 ms). The same figures bound the submission
ratio: a RunJob that costs its client and the daemon no more than a
GetJobStatus and adds only its record gives at most
(status client + daemon) / (status client + daemon + record).
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path

import psutil
from common import Daemon, Report, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import root_build  # noqa: E402  (a sibling benchmark: its measurement is reused)
import submit_throughput  # noqa: E402

CALLERS = 50
CHANNELS = 5
TARGETS = {"network none": 300.0, "bridge": 150.0}  # jobs/s, issue 18


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def namespaces_ms(count: int) -> tuple[float, float]:
    """CPU per `unshare ... true` and their rate: submit_throughput's
    baseline (32 at a time), its children's CPU read around it."""
    before = children_cpu()
    rate = await submit_throughput.bare_unshare_rate(count)
    return (children_cpu() - before) * 1e3 / count, rate


def root_ms(count: int) -> float:
    """CPU of the shared root above bare pid and mount namespaces."""
    src = str(HERE.parent / "src")
    built = root_build.run_tree(src, count, True)["cpu_ms"]
    bare = root_build.run_tree(src, count, False)["cpu_ms"]
    return built - bare


def cgroup_ms(count: int) -> float:
    """CPU of creating a job's cgroup (default limits and device rules) and
    removing it, with the daemon's own cgroup manager."""
    from joblet.config.model import LimitDefaults
    from joblet.resources.detect import create_cgroup_manager
    from joblet.resources.device_rules import job_rules
    from joblet.resources.interface import Limits

    defaults = LimitDefaults()
    parent = f"joblet-floor-{uuid.uuid4().hex[:8]}"
    cgroups = create_cgroup_manager(Path("/sys/fs/cgroup"), parent)
    limits = Limits(
        max_cpu_percent=defaults.max_cpu,
        max_memory_bytes=defaults.max_memory_mb * 1024 * 1024,
        max_io_bps=defaults.max_iobps,
        max_pids=defaults.max_pids,
        devices=job_rules() if cgroups.device_filter else (),
    )
    cgroups.create("warm-up", limits).remove()
    try:
        samples = []
        for k in range(count):
            before = time.process_time()
            cgroups.create(f"floor-{k}", limits).remove()
            samples.append(time.process_time() - before)
        return statistics.median(samples) * 1e3
    finally:
        cgroups.remove_parent()


async def calls_ms(daemon: Daemon, count: int) -> dict[str, float]:
    """Client and daemon CPU per GetJobStatus and per GetJobLogs of a
    finished job, and the state helper's CPU per RunJob scheduled ahead."""
    async with daemon.aio_channel() as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        job = await stub.RunJob(pb.RunJobRequest(command="true", network="none"))
        async for _ in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid)):
            pass
    status = pb.GetJobStatusReq(uuid=job.jobUuid)
    logs = pb.GetJobLogsReq(uuid=job.jobUuid)

    async def one_status(stub: pb_grpc.JobServiceStub) -> str:
        await stub.GetJobStatus(status)
        return ""

    async def one_stream(stub: pb_grpc.JobServiceStub) -> str:
        async for _ in stub.GetJobLogs(logs):
            pass
        return ""

    await submit_throughput.rate(daemon, one_status, count // 10)  # warm up
    unary, _ = await submit_throughput.rate(daemon, one_status, count)
    stream, _ = await submit_throughput.rate(daemon, one_stream, count)
    record, _ = await submit_throughput.rate(daemon, submit_throughput.submit, count)
    return {
        "status_client_ms": unary.client_ms,
        "status_daemon_ms": unary.daemon_ms,
        "stream_client_ms": stream.client_ms,
        "stream_daemon_ms": stream.daemon_ms,
        "record_state_ms": record.state_ms,
        "runjob_client_ms": record.client_ms,
        "runjob_daemon_ms": record.daemon_ms,
    }


def main() -> None:
    args = parse_args(__doc__ or "")
    count = 500 if args.quick else 2_000
    report = Report("throughput_floor", args.quick)
    cores = psutil.cpu_count() or 1
    ns_ms, ns_rate = asyncio.run(namespaces_ms(count))
    root = root_ms(count // 4)
    cgroup = cgroup_ms(count // 4)
    with running_daemon() as daemon:
        calls = asyncio.run(calls_ms(daemon, count))
    unary = calls["status_client_ms"] + calls["status_daemon_ms"]
    stream = calls["stream_client_ms"] + calls["stream_daemon_ms"]
    parts = {
        "namespaces_ms": ns_ms,
        "root_ms": root,
        "cgroup_ms": cgroup,
        "runjob_at_least_a_unary_call_ms": unary,
        "log_stream_ms": stream,
        "record_ms": calls["record_state_ms"],
    }
    floor = sum(parts.values())
    ratio_bound = unary / (unary + calls["record_state_ms"])
    report.figures = {**parts, "floor_ms_per_job": floor, "submission_ratio_bound": ratio_bound}
    report.baselines = {
        "cores": float(cores),
        "bare_unshare_per_s": ns_rate,
        **{f"budget_ms_at_{int(rate)}_per_s": cores * 1e3 / rate for rate in TARGETS.values()},
        "runjob_client_plus_daemon_ms": calls["runjob_client_ms"] + calls["runjob_daemon_ms"],
    }
    for name, rate in TARGETS.items():
        budget = cores * 1e3 / rate
        print(f"{name}: {rate:.0f} jobs/s leaves {budget:.2f} ms of CPU per job; "
              f"the floor is {floor:.2f} ms ({floor / budget:.2f}x the budget)")  # fmt: skip
    print(f"submission ratio: at most {ratio_bound:.2f} (target 0.85)")
    report.check("floor within the 300/s budget", floor <= cores * 1e3 / 300, "floor <= budget")
    report.check("ratio bound", ratio_bound >= 0.85, "bound >= 0.85")
    report.emit()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
