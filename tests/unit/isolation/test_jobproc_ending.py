"""A job whose both output pipes end in one select batch, after its drain
limit passed (a launcher held up by a burst of launches): the first pipe's
handler finishes the job and closes the second, whose event of the same batch
must not reach the job any more. It once killed the launcher (KeyError) and
with it the launches in flight."""

from __future__ import annotations

import os
import selectors
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from joblet.isolation import dispatch, records
from joblet.isolation.jobproc import JobProc
from joblet.isolation.prepare import ParentEnds
from joblet.isolation.spec import LaunchSpec


class FakeLauncher:
    """What a JobProc asks of the launcher, over a real selector."""

    def __init__(self, state_dir: Path) -> None:
        self.sel = selectors.DefaultSelector()
        self.state_dir = str(state_dir)
        self.host = SimpleNamespace(procfs="/proc")
        self.events: list[dict[str, Any]] = []
        self.forgotten: list[str] = []
        self.fenced: set[str] = set()  # killed by the launcher's fence

    def unwatch(self, fd: int) -> None:
        self.sel.unregister(fd)

    def broadcast(self, message: dict[str, Any]) -> None:
        self.events.append(message)

    def forget(self, job: JobProc) -> None:
        self.forgotten.append(job.job_id)


def test_both_pipes_ending_in_one_batch_after_the_drain_limit(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    spec = LaunchSpec(
        job_id="j1", argv=("true",), env={}, hostname="j1", job_dir=str(job_dir),
        workspace=str(tmp_path), log_path=str(job_dir / "output.log"), cgroup_procs=(),
        allowed_mounts=(),
    )  # fmt: skip
    out_r, out_w = os.pipe()
    err_out_r, err_out_w = os.pipe()
    exec_r, exec_w = os.pipe()  # exec succeeded long ago; its end is gone
    os.close(exec_w)
    launcher = FakeLauncher(tmp_path)
    job = JobProc(spec, ParentEnds(out_r, err_out_r, exec_r), conn=None, rid=1)  # type: ignore[arg-type]
    job.watch(launcher)  # type: ignore[arg-type]
    launcher.unwatch(exec_r)
    os.close(exec_r)
    job.err_closed, job.conn, job.launched, job.pid = True, None, True, 12345
    job.exited(0)  # reaped...
    job.deadline = time.monotonic() - 0.1  # ...longer ago than the drain limit
    os.write(err_out_w, b"last words\n")  # drained by the first pipe's handler
    for fd in (out_w, err_out_w):  # the job's processes are gone: both pipes end
        os.close(fd)
    # stdout's end handled first: its handler finishes the job, stderr's is stale.
    events = sorted(launcher.sel.select(0), key=lambda event: event[0].fd != out_r)
    assert len(events) == 2
    try:
        dispatch.run_ready(launcher.sel, events)
        # The other pipe's event, stale now, reached no handler; the job ended once.
        assert launcher.forgotten == ["j1"]
        assert [e["event"] for e in launcher.events] == ["exit"]
        assert records.read_exit(str(job_dir)) is not None
        assert not launcher.sel.get_map()
        assert b"last words" in (job_dir / "output.log").read_bytes()
    finally:
        launcher.sel.close()
