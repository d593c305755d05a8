"""Job start latency with size-capped workspaces and with plain ones, in the same run.

    .venv/bin/python bench/job_start_workspace.py [--quick]

Two daemons side by side, `joblet.maxWorkspaceSize: 10GiB` (each workspace
a btrfs subvolume with a limit) and `0` (a plain directory), each timed as
bench/job_start.py times one (RunJob sent -> first output byte of `echo hi`,
network none), in alternating batches so both see the same host load. Also
the delete of a finished job (DeleteJob round trip). Target: capped p50 <=
plain p50 + 1 ms.
"""

from __future__ import annotations

import contextlib
import time

from common import Report, describe_ms, p50, p99, parse_args, running_daemon
from job_start import WARMUP

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

BATCHES = 10


def start_and_delete(stub: pb_grpc.JobServiceStub) -> tuple[float, float]:
    """Seconds from RunJob to the first output byte, and of the DeleteJob after it ended."""
    sent = time.perf_counter()
    job = stub.RunJob(pb.RunJobRequest(command="echo", args=["hi"], network="none"))
    chunks = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid))
    first = next(chunks).payload
    started = time.perf_counter() - sent
    output = first + b"".join(c.payload for c in chunks)  # the stream ends with the job
    if output != b"hi\n":
        raise AssertionError(f"job printed {output!r}")
    sent = time.perf_counter()
    stub.DeleteJob(pb.DeleteJobReq(uuid=job.jobUuid))
    return started, time.perf_counter() - sent


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 50 if args.quick else 200
    report = Report("job_start_workspace", args.quick)
    starts: dict[str, list[float]] = {}
    deletes: dict[str, list[float]] = {}
    with contextlib.ExitStack() as stack:
        daemons = {name: stack.enter_context(running_daemon(maxWorkspaceSize=size))
                   for name, size in (("plain", 0), ("capped", "10GiB"))}  # fmt: skip
        for daemon in daemons.values():
            for _ in range(WARMUP):
                start_and_delete(daemon.jobs())
        for batch in range(BATCHES):
            # Each daemon goes first in every other batch.
            order = list(daemons.items())[:: 1 if batch % 2 else -1]
            for name, daemon in order:
                for _ in range(runs // BATCHES):
                    started, deleted = start_and_delete(daemon.jobs())
                    starts.setdefault(name, []).append(started)
                    deletes.setdefault(name, []).append(deleted)
    for name in ("plain", "capped"):
        print(f"start  {name:6}", describe_ms(starts[name]))
        print(f"delete {name:6}", describe_ms(deletes[name]))
        report.figures[f"{name}_start_p50_ms"] = p50(starts[name]) * 1e3
        report.figures[f"{name}_start_p99_ms"] = p99(starts[name]) * 1e3
        report.figures[f"{name}_delete_p50_ms"] = p50(deletes[name]) * 1e3
    delta = p50(starts["capped"]) - p50(starts["plain"])
    report.figures["start_p50_delta_ms"] = delta * 1e3
    report.check("start p50", delta <= 0.001, "capped <= plain + 1 ms")
    report.emit()


if __name__ == "__main__":
    main()
