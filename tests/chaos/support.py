"""What the chaos tests share: their size, the helper processes' pids, and
reading a daemon's view of its jobs."""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from collections.abc import Sequence

from integration.conftest import RunningDaemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

LONG = os.environ.get("JOBLET_CHAOS_LONG") == "1"


def scale(quick: int, long: int) -> int:
    """The quick figure in the default suite, the long one with JOBLET_CHAOS_LONG=1."""
    return long if LONG else quick


def helper_pid(daemon: RunningDaemon, name: str) -> int:
    """The pid of the daemon's `name` helper (persist, state), from its pid file."""
    return int((daemon.root / "run" / f"{name}.pid").read_text().strip())


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def kill_helpers(daemon: RunningDaemon, names: Sequence[str], timeout: float = 30.0) -> None:
    """SIGKILL the helpers (in that order, at once), then wait until the
    daemon has started new ones that listen again."""
    old = {name: helper_pid(daemon, name) for name in names}
    for name in names:
        os.kill(old[name], signal.SIGKILL)
    deadline = time.monotonic() + timeout
    for name in names:
        while not _restarted(daemon, name, old[name]):
            if time.monotonic() > deadline:
                raise AssertionError(f"the {name} helper was not restarted within {timeout:g}s")
            time.sleep(0.02)


def _restarted(daemon: RunningDaemon, name: str, old: int) -> bool:
    try:
        pid = helper_pid(daemon, name)
    except (OSError, ValueError):
        return False
    return pid != old and alive(pid) and _listening(daemon, name)


def _listening(daemon: RunningDaemon, name: str) -> bool:
    sockets = {"state": ["state-ipc.sock"], "persist": ["persist-ipc.sock", "persist-grpc.sock"]}
    return all((daemon.root / "run" / sock).exists() for sock in sockets[name])


def jobs_by_name(stub: pb_grpc.JobServiceStub) -> dict[str, list[pb.Job]]:
    listed: dict[str, list[pb.Job]] = defaultdict(list)
    for job in stub.ListJobs(pb.EmptyRequest(), timeout=30).jobs:
        listed[job.name].append(job)
    return dict(listed)


def wait_all_final(
    stub: pb_grpc.JobServiceStub, names: Sequence[str], timeout: float
) -> dict[str, pb.Job]:
    """Poll ListJobs until every named job has ended; name -> job."""
    final = {"COMPLETED", "FAILED", "STOPPED", "CANCELED"}
    deadline = time.monotonic() + timeout
    while True:
        listed = jobs_by_name(stub)
        ended = {n: jobs[0] for n, jobs in listed.items() if n in names and jobs[0].status in final}
        if len(ended) == len(names):
            return ended
        if time.monotonic() > deadline:
            left = sorted(set(names) - set(ended))
            states = {n: [j.status for j in listed.get(n, [])] for n in left[:10]}
            raise AssertionError(f"{len(left)} jobs did not end: {states}")
        time.sleep(0.2)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
