"""A damaged file at start: the state database (SQLite), a persist segment,
a launcher running record. The daemon starts, says which file or record is
bad, keeps the rest, and moves the bad file aside as NAME.corrupt-<time>
(never deletes it)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from integration.conftest import RunningDaemon, _stop_launcher, wait_status
from integration.jobs_support import FINAL, logs, run

from .support import jobs_by_name

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.privileged]

JOBS = 40
PADDING = "x" * 1500  # makes each job record span most of a database page


def _run_jobs(daemon: RunningDaemon, count: int, script: str) -> dict[str, str]:
    stub = daemon.jobs()
    ids = {
        f"job-{i}": run(stub, "sh", "-c", script, "sh", str(i), PADDING, name=f"job-{i}")
        for i in range(count)
    }
    for job_id in ids.values():
        wait_status(stub, job_id, FINAL, timeout=60)
    return ids


def test_corrupt_state_database_is_quarantined_and_the_rest_kept(
    chaos_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = chaos_daemon()
    ids = _run_jobs(daemon, JOBS, 'exit "$1"')
    daemon.stop_daemon_only()
    db = daemon.root / "state" / "jobs.db"
    bad_job = ids["job-0"]
    with sqlite3.connect(db) as conn:  # one record that is not a job at all
        conn.execute("UPDATE jobs SET record = ? WHERE job_id = ?", (b"{not json", bad_job))
    conn.close()
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.truncate(size * 2 // 3)  # the last pages are gone

    daemon.restart()
    listed = jobs_by_name(daemon.jobs())
    state_log = (daemon.root / "run" / "state.log").read_text()
    assert "IS CORRUPT" in state_log and str(db) in state_log
    (aside,) = [
        p for p in db.parent.glob("jobs.db.corrupt-*") if p.name[-4:] not in ("-wal", "-shm")
    ]
    assert aside.stat().st_size == size * 2 // 3  # the damaged file, as it was
    assert f"unreadable record of job {bad_job}" in daemon.log_path.read_text()
    kept = {name for name in listed if name in ids}
    assert 5 <= len(kept) < JOBS, f"kept {len(kept)} of {JOBS} jobs"
    for name in kept:
        (job,) = listed[name]
        assert (job.uuid, job.exitCode) == (ids[name], int(name.split("-")[1]))
    new = run(daemon.jobs(), "true")  # and the fresh database takes new jobs
    assert wait_status(daemon.jobs(), new, FINAL).status == "COMPLETED"


def test_damaged_persist_segment_is_quarantined_and_the_rest_served(
    chaos_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = chaos_daemon()
    # 40 lines, 50 ms apart: written to persist in several frames.
    script = 'for n in $(seq 1 40); do echo "line $n"; sleep 0.05; done'
    job_id = run(daemon.jobs(), "sh", "-c", script)
    wait_status(daemon.jobs(), job_id, FINAL, timeout=60)
    expected = [f"line {n}" for n in range(1, 41)]
    _wait_persisted(daemon, job_id)
    daemon.stop_daemon_only()
    (segment,) = (daemon.root / "logs" / job_id).glob("seg-*.zst")
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = b"\xff" * 8
    segment.write_bytes(bytes(data))

    daemon.restart()
    got = logs(daemon.jobs(), job_id).decode().splitlines()
    persist_log = (daemon.root / "run" / "persist.log").read_text()
    assert "damaged segment" in persist_log and str(segment) in persist_log
    (aside,) = segment.parent.glob(f"{segment.name}.corrupt-*")
    assert aside.read_bytes() == bytes(data)
    assert got[0] == "line 1" and got[-1] == "line 40", got
    assert got == [line for line in expected if line in got]  # in order, none invented
    assert len(got) < len(expected)


def _wait_persisted(daemon: RunningDaemon, job_id: str, timeout: float = 30) -> None:
    """Until persist has the job's whole log (the local copy is then dropped)."""
    mark = daemon.root / "jobs" / job_id / "output.persisted"
    deadline = time.monotonic() + timeout
    while not mark.exists():
        assert time.monotonic() < deadline, "persist never confirmed the log"
        time.sleep(0.05)


def test_damaged_launcher_record_is_quarantined_and_the_rest_kept(
    chaos_daemon: Callable[..., RunningDaemon], tmp_path: Path
) -> None:
    daemon = chaos_daemon()
    daemon.stop_daemon_only()
    _stop_launcher(daemon.root)
    records = daemon.root / "run" / "launcher"
    gone_dir = tmp_path / "gone-job"
    gone_dir.mkdir()
    gone = {"job_id": "gone", "pid": 4_000_000, "start_ticks": 1, "job_dir": str(gone_dir)}
    (records / "gone.json").write_text(json.dumps(gone))
    (records / "torn.json").write_text('{"job_id": "torn", "pi')

    daemon.restart()
    assert wait_status(daemon.jobs(), run(daemon.jobs(), "true"), FINAL).status == "COMPLETED"
    said = (records / "launcher.log").read_text()
    assert "damaged running record" in said and "torn.json" in said
    assert len(list(records.glob("torn.json.corrupt-*"))) == 1
    exit_record = json.loads((gone_dir / "exit.json").read_text())  # the good one was read
    assert exit_record["lost"] is True
    assert not os.path.exists(records / "gone.json")
