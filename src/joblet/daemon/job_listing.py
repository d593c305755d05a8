"""The ListJobs response, kept under the server's send limit.

Each job may carry up to 1 MiB of environment and 256 KiB of arguments, so a
few big jobs would make one `Jobs` message larger than a client accepts
(gRPC's default receive limit is 4 MiB; the server sends 64 MiB at most), and
the listing would fail for every client. The v1.0.9 contract has no paging,
so the details are bounded instead: every job is listed, and when all of them
in full would not fit, the biggest lose their environment, secret environment
and arguments (GetJobStatus still gives them whole)."""

from __future__ import annotations

from collections.abc import Sequence

from joblet.api import joblet_pb2 as pb
from joblet.daemon import mappers
from joblet.jobs.model import Job

# What a client with gRPC's defaults accepts (4 MiB), less room for framing.
LIST_BUDGET_BYTES = 4 * 1024 * 1024 - 64 * 1024
# A map entry or repeated string costs its bytes plus tags and lengths.
ENTRY_OVERHEAD = 12


def detail_bytes(job: Job) -> int:
    """About what a job's environment, secret environment and arguments add
    to its list entry (secret values go out as '***')."""
    spec = job.spec
    env = sum(
        len(k.encode()) + len(v.encode()) + ENTRY_OVERHEAD for k, v in spec.environment.items()
    )
    secrets = sum(len(k.encode()) + 3 + ENTRY_OVERHEAD for k in spec.secret_environment)
    args = sum(len(a.encode()) + ENTRY_OVERHEAD for a in spec.args)
    return env + secrets + args


def list_message(jobs: Sequence[Job], budget: int = LIST_BUDGET_BYTES) -> pb.Jobs:
    """Every job, with its details as long as the whole stays within `budget`."""
    slim = [mappers.job_message(job, details=False) for job in jobs]
    left = budget - sum(message.ByteSize() + ENTRY_OVERHEAD for message in slim)
    sizes = [detail_bytes(job) for job in jobs]
    # Smallest details first: as many jobs as possible keep theirs.
    for index in sorted(range(len(jobs)), key=sizes.__getitem__):
        if sizes[index] > left:
            break
        left -= sizes[index]
        slim[index] = mappers.job_message(jobs[index])
    return pb.Jobs(jobs=slim)
