"""A soak: many mixed jobs through one daemon, the counts of what it holds
(leaks.py) recorded every tenth of the way, for bench/soak.py and its tests.

The mix, by share of jobs: network none, the bridge, isolated, a custom
network, a memory and a filesystem volume, uploads, limits, some killed by
their memory limit, some stopped, some ending at the node's jobTimeout,
some whose command does not exist. Callers each submit the next job once
their last has ended.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

NETWORK = "soaknet"
NETWORK_CIDR = "10.203.0.0/24"
MEMORY_VOLUME = "soakmem"
DISK_VOLUME = "soakdisk"
FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
# The node's jobTimeout the "timeout" kind runs into (sleep outlasts it).
JOB_TIMEOUT = "2s"
STOP_AFTER_S = 0.2


def _request(kind: str) -> pb.RunJobRequest:
    run = pb.RunJobRequest
    upload = pb.FileUpload(path="in.txt", content=b"soak\n" * 64, mode=0o644)
    requests = {
        "none": run(command="true", network="none"),
        "bridge": run(command="echo", args=["hi"]),
        "isolated": run(command="true", network="isolated"),
        "custom": run(command="true", network=NETWORK),
        "memory volume": run(
            command="sh", args=["-c", f"echo x > /volumes/{MEMORY_VOLUME}/f"],
            volumes=[MEMORY_VOLUME], network="none",
        ),
        "disk volume": run(
            command="sh", args=["-c", f"echo x > /volumes/{DISK_VOLUME}/f"],
            volumes=[DISK_VOLUME], network="none",
        ),
        "upload": run(command="cat", args=["in.txt"], uploads=[upload], network="none"),
        "limits": run(command="true", maxCpu=50, maxMemory=64, network="none"),
        "oom": run(command="tail", args=["/dev/zero"], maxMemory=16, network="none"),
        "stopped": run(command="sleep", args=["30"], network="none"),
        "timeout": run(command="sleep", args=["30"], network="none"),
        "no such command": run(command="/nonexistent/soak", network="none"),
    }  # fmt: skip
    return requests[kind]


# One round of the mix: a job of each entry, in this order.
MIX: tuple[str, ...] = (
    "none", "bridge", "upload", "none", "limits", "isolated", "none", "memory volume",
    "bridge", "custom", "none", "oom", "disk volume", "none", "stopped", "upload",
    "bridge", "no such command", "none", "timeout",
)  # fmt: skip


@dataclass
class Tally:
    """What the jobs did: final status by kind, RunJob refusals by code."""

    done: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)


async def prepare(channel: grpc.aio.Channel) -> None:
    """The network and volumes the mix uses."""
    networks = pb_grpc.NetworkServiceStub(channel)  # type: ignore[no-untyped-call]
    await networks.CreateNetwork(pb.CreateNetworkReq(name=NETWORK, cidr=NETWORK_CIDR))
    volumes = pb_grpc.VolumeServiceStub(channel)  # type: ignore[no-untyped-call]
    await volumes.CreateVolume(pb.CreateVolumeReq(name=MEMORY_VOLUME, size="16MB", type="memory"))
    await volumes.CreateVolume(pb.CreateVolumeReq(name=DISK_VOLUME, size="16MB", type="filesystem"))


async def one_job(stub: pb_grpc.JobServiceStub, kind: str, tally: Tally) -> None:
    try:
        job = await stub.RunJob(_request(kind), timeout=60)
    except grpc.aio.AioRpcError as exc:
        tally.refused[f"{kind}: {exc.code().name}"] += 1
        return
    if kind == "stopped":
        await asyncio.sleep(STOP_AFTER_S)
        await stub.StopJob(pb.StopJobReq(uuid=job.jobUuid, grace_seconds=1), timeout=60)
    # The log stream ends with the job.
    async for _ in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid), timeout=120):
        pass
    status = await final_status(stub, job.jobUuid)
    tally.outcomes[f"{kind}: {status}"] += 1


async def final_status(stub: pb_grpc.JobServiceStub, job_id: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        try:
            reply = await stub.GetJobStatus(pb.GetJobStatusReq(uuid=job_id), timeout=30)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return "COLLECTED"  # retention took it already: it was final
            raise
        if reply.status in FINAL or time.monotonic() > deadline:
            return str(reply.status)
        await asyncio.sleep(0.05)


async def soak(
    stubs: list[pb_grpc.JobServiceStub],
    total: int,
    *,
    callers: int,
    every: int,
    record: Callable[[int], None],
    deadline_s: float,
) -> Tally:
    """`total` jobs of the mix from `callers`; at 0 and after each `every`
    jobs, submissions pause until no job of the mix is left running and
    `record(done)` is called, so the counts are read between jobs. Stops
    early at `deadline_s` from now."""
    tally = Tally()
    started = [0]
    running = [0]
    gate = asyncio.Event()
    gate.set()
    end = time.monotonic() + deadline_s
    record(0)

    async def checkpoint(done: int) -> None:
        gate.clear()
        while running[0]:
            await asyncio.sleep(0.02)
        record(done)
        gate.set()

    async def caller(index: int) -> None:
        stub = stubs[index % len(stubs)]
        while True:
            await gate.wait()
            if started[0] >= total or time.monotonic() >= end:
                return
            n = started[0]
            started[0] += 1
            running[0] += 1
            try:
                await one_job(stub, MIX[n % len(MIX)], tally)
            finally:
                running[0] -= 1
            tally.done += 1
            if tally.done % every == 0:
                await checkpoint(tally.done)

    await asyncio.gather(*(caller(i) for i in range(callers)))
    return tally
