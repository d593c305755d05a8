"""Small helpers shared by the tests that drive jobs through a real daemon
(restart recovery here, the chaos suite in tests/chaos)."""

from __future__ import annotations

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

FINAL = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
# Prints 1..N, one line every 50 ms, then exits with 5.
COUNTER = "for i in $(seq 1 {n}); do echo $i; sleep 0.05; done; exit 5"


def run(stub: pb_grpc.JobServiceStub, command: str, *args: str, **fields: object) -> str:
    return str(stub.RunJob(pb.RunJobRequest(command=command, args=list(args), **fields)).jobUuid)


def logs(stub: pb_grpc.JobServiceStub, job_id: str) -> bytes:
    return b"".join(c.payload for c in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job_id)))


def counter_output(n: int) -> bytes:
    return "".join(f"{i}\n" for i in range(1, n + 1)).encode()
