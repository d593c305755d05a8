"""The ListJobs response, kept to what any client accepts.

The v1.0.9 contract has no paging, and gRPC clients refuse a reply over
4 MiB by default, so the reply is bounded to LIST_BUDGET_BYTES (3 MiB):

- every job is listed while all of them fit; when they do not, the reply
  holds every unfinished job and the most recently finished ones that fit,
  and says how many it left out in the trailing metadata (OMITTED_KEY):
  ListJobPages (or GetJobStatus by id) shows the others;
- each job may carry up to 1 MiB of environment and 256 KiB of arguments,
  so the entries go out without their environment, secret environment and
  arguments first, and get them back, smallest first, while the whole
  stays within the budget (GetJobStatus gives them whole).
"""

from __future__ import annotations

from collections.abc import Sequence

from joblet.api import joblet_pb2 as pb
from joblet.daemon import mappers
from joblet.jobs.model import Job

LIST_BUDGET_BYTES = 3 * 1024 * 1024
# A map entry or repeated string costs its bytes plus tags and lengths.
ENTRY_OVERHEAD = 12
# Trailing metadata: finished jobs left out of the reply (absent when none).
OMITTED_KEY = "joblet-omitted-finished-jobs"


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


def _newest_end_first(job: Job) -> tuple[float, float, str]:
    return (-(job.ended_at or job.created_at), -job.created_at, job.id)


def list_message(jobs: Sequence[Job], budget: int = LIST_BUDGET_BYTES) -> tuple[pb.Jobs, int]:
    """The reply for `jobs` (in their order) within `budget`, and how many
    finished jobs it leaves out."""
    slim: dict[str, pb.Job] = {}
    used = 0
    for job in jobs:
        if not job.status.is_final:
            slim[job.id] = message = mappers.job_message(job, details=False)
            used += message.ByteSize() + ENTRY_OVERHEAD
    finished = sorted((job for job in jobs if job.status.is_final), key=_newest_end_first)
    omitted = 0
    for index, job in enumerate(finished):
        message = mappers.job_message(job, details=False)
        cost = message.ByteSize() + ENTRY_OVERHEAD
        if used + cost > budget:
            omitted = len(finished) - index
            break
        slim[job.id] = message
        used += cost
    kept = [job for job in jobs if job.id in slim]
    left = budget - used
    sizes = {job.id: detail_bytes(job) for job in kept}
    # Smallest details first: as many jobs as possible keep theirs.
    for job in sorted(kept, key=lambda j: sizes[j.id]):
        if sizes[job.id] > left:
            break
        left -= sizes[job.id]
        slim[job.id] = mappers.job_message(job)
    return pb.Jobs(jobs=[slim[job.id] for job in kept]), omitted
