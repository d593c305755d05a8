"""A busy stream of small commits checkpoints once per CHECKPOINT_WAL_BYTES
of growth, not after every commit: a checkpointed WAL keeps its size on
disk, so its size alone would ask for a checkpoint (two fsyncs) each time."""

import os
from pathlib import Path

from joblet.state.backends.sqlite import SqliteBackend
from joblet.state.backends.sqlite_checkpoint import CHECKPOINT_WAL_BYTES

RECORD = 1500  # about a job's JSON record


async def test_small_commits_after_a_large_wal_checkpoint_by_growth(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    backend = await SqliteBackend.open(path)
    checkpointer = backend._checkpointer
    runs = 0
    checkpoint = checkpointer._checkpoint

    def counted() -> None:
        nonlocal runs
        runs += 1
        checkpoint()

    checkpointer._checkpoint = counted  # type: ignore[method-assign]
    try:
        # One large batch leaves a WAL over the threshold on disk.
        big = [(f"big-{n}", os.urandom(64 * 1024), None) for n in range(24)]
        await backend.write_many(big)
        await backend.checkpointed()
        assert os.path.getsize(f"{path}-wal") >= CHECKPOINT_WAL_BYTES
        before = runs
        commits = 250  # ~1.4 MB of records and commit pages
        for n in range(commits):
            await backend.write_many([(f"job-{n}", os.urandom(RECORD), None)])
        await backend.checkpointed()
        asked = runs - before
        assert 1 <= asked <= 4, f"{asked} checkpoints for {commits} small commits"
        assert len(await backend.list_all()) == 24 + commits
    finally:
        await backend.close()
