"""The state helper as its own process (`python -m joblet.state`), killed and restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.serialization import job_to_json
from joblet.state.backends.sqlite import SqliteBackend
from joblet.state.client import StateClient
from joblet.state.service import main


class Helper:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "config" / "joblet-config.yml"
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump({"joblet": {"root": str(root)}}))
        self.socket = root / "run" / "state-ipc.sock"
        self.log = root / "state.log"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "joblet.state", "--config", str(self.config)],
                stdout=log,
                stderr=log,
            )
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"helper exited:\n{self.log.read_text()}")
            if self.socket.exists():
                return
            await asyncio.sleep(0.025)
        raise RuntimeError(f"helper did not listen:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        return self.proc.wait(timeout=10)


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[Helper]:
    running = Helper(tmp_path)
    yield running
    if running.proc is not None and running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


def job(job_id: str, status: JobStatus, exit_code: int = 0) -> Job:
    return Job(id=job_id, spec=JobSpec(command="sleep"), status=status, exit_code=exit_code)


async def test_events_survive_sigkill_of_the_helper(helper: Helper) -> None:
    await helper.start()
    client = await StateClient.connect(helper.socket, max_backoff_s=0.1)
    expected: dict[str, tuple[JobStatus, int]] = {}
    for i in range(200):
        client.put(job(f"j{i}", JobStatus.RUNNING))
        expected[f"j{i}"] = (JobStatus.RUNNING, 0)
        if i == 100:
            await asyncio.sleep(0.05)
            helper.kill()  # mid-stream: some events acked, some in flight, some unsent
        if i % 20 == 0:
            await asyncio.sleep(0)
    for i in range(0, 200, 2):  # the helper is still down: these are only buffered
        client.put(job(f"j{i}", JobStatus.COMPLETED, exit_code=i % 7))
        expected[f"j{i}"] = (JobStatus.COMPLETED, i % 7)
    for i in range(1, 200, 10):
        client.delete(f"j{i}")
        del expected[f"j{i}"]
    assert client.pending > 0
    await helper.start()
    assert await client.flush(10)
    jobs = await client.load_all(timeout=5)
    await client.close()
    assert {j.id: (j.status, j.exit_code) for j in jobs} == expected
    assert client.dropped == 0
    assert helper.stop() == 0


async def test_truncated_state_file_does_not_stop_the_helper(helper: Helper) -> None:
    db = helper.root / "state" / "jobs.db"
    backend = await SqliteBackend.open(db)
    for i in range(300):
        record = job_to_json(job(f"old{i}", JobStatus.COMPLETED, exit_code=3))
        await backend.put(f"old{i}", record + b" " * 800)  # spread over many pages
    await backend.close()
    os.truncate(db, db.stat().st_size // 2)
    await helper.start()
    client = await StateClient.connect(helper.socket)
    client.put(job("new", JobStatus.QUEUED))
    assert await client.flush(5)
    jobs = await client.load_all(timeout=5)
    await client.close()
    ids = {j.id for j in jobs}
    assert "new" in ids
    salvaged = ids - {"new"}
    assert 0 < len(salvaged) < 300  # the readable half is still served
    assert all(j.exit_code == 3 for j in jobs if j.id != "new")
    log = helper.log.read_text()
    assert "IS CORRUPT" in log and "moved the corrupt file" in log
    assert helper.stop() == 0


def test_bad_config_exits_with_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("state: {backend: etcd}\n")
    assert main(["--config", str(config)]) == 2
