"""A damaged SQLite file must not stop the helper: salvage, move aside, go on."""

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from joblet.state.backends.sqlite import SqliteBackend


async def fill(path: Path, count: int) -> None:
    backend = await SqliteBackend.open(path)
    for i in range(count):
        await backend.put(f"job-{i:05d}", (f"{i:05d}" * 200).encode())
    await backend.close()


async def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "jobs.db"
    await fill(path, 10)
    backend = await SqliteBackend.open(path)
    assert len(await backend.list_all()) == 10
    await backend.close()
    assert (path.stat().st_mode & 0o777) == 0o600


async def test_truncated_file_is_salvaged_and_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.db"
    await fill(path, 300)
    size = path.stat().st_size
    os.truncate(path, size // 2)
    with caplog.at_level(logging.ERROR):
        backend = await SqliteBackend.open(path)
    try:
        records = dict(await backend.list_all())
        assert 0 < len(records) < 300
        for job_id, record in records.items():  # what was salvaged is intact
            assert record == (job_id[4:] * 200).encode()
        await backend.put("after", b"new")
        assert await backend.get("after") == b"new"
    finally:
        await backend.close()
    assert "CORRUPT" in caplog.text
    assert len(list(tmp_path.glob("jobs.db.corrupt-*[0-9]"))) == 1


async def test_garbage_file_is_replaced_by_a_fresh_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.db"
    path.write_bytes(b"this is not a database at all" * 500)
    with caplog.at_level(logging.ERROR):
        backend = await SqliteBackend.open(path)
    assert await backend.list_all() == []
    await backend.close()
    assert "is not a database" in caplog.text
    (aside,) = tmp_path.glob("jobs.db.corrupt-*[0-9]")
    assert aside.read_bytes().startswith(b"this is not")


async def test_a_text_row_does_not_stop_the_listing(tmp_path: Path) -> None:
    """A row edited by hand (or by another tool) as TEXT is read as UTF-8."""
    path = tmp_path / "jobs.db"
    await fill(path, 2)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE jobs SET record = ? WHERE job_id = 'job-00001'", ('{"a":1}',))
    db.close()
    backend = await SqliteBackend.open(path)
    try:
        records = dict(await backend.list_all())
        assert records["job-00001"] == b'{"a":1}'
        assert records["job-00000"] == ("00000" * 200).encode()
        assert await backend.get("job-00001") == b'{"a":1}'
    finally:
        await backend.close()


async def test_rows_after_a_damaged_page_are_salvaged_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.db"
    await fill(path, 300)
    page = 4096
    pages = path.stat().st_size // page
    with path.open("r+b") as f:  # one leaf page in the middle overwritten
        f.seek(page * (pages // 2))
        f.write(b"\x5a" * page)
    with caplog.at_level(logging.ERROR):
        backend = await SqliteBackend.open(path)
    try:
        records = dict(await backend.list_all())
    finally:
        await backend.close()
    assert "CORRUPT" in caplog.text
    for job_id, record in records.items():
        assert record == (job_id[4:] * 200).encode()
    assert "job-00299" in records  # the rows after the damage are kept
    assert 300 - 20 <= len(records) < 300, len(records)
