"""The per-volume state directory: atomic records, unfinished creates, removal."""

from __future__ import annotations

from pathlib import Path

import pytest

from joblet.volumes.model import VolumeRecord, VolumeType
from joblet.volumes.store import VolumeStore


def record(name: str) -> VolumeRecord:
    return VolumeRecord(name, "8MB", 8 * 10**6, VolumeType.MEMORY, "2024-05-01T10:00:00+00:00")


def test_records_round_trip_and_leave_no_temp_file(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path / "volumes")
    for name in ("b", "a"):
        store.make_dirs(name)
        store.write(record(name))
    store.write(record("a"))  # rewrite in place
    records, unfinished, errors = store.load()
    assert [r.name for r in records] == ["a", "b"]
    assert (unfinished, errors) == ([], [])
    assert sorted(p.name for p in (tmp_path / "volumes" / "a").iterdir()) == ["mnt", "volume.json"]
    assert (tmp_path / "volumes").stat().st_mode & 0o777 == 0o700


def test_unfinished_and_bad_records_are_reported(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    store.make_dirs("half")  # no record: a create that crashed
    store.make_dirs("bad")
    (tmp_path / "bad" / "volume.json").write_text("{not json")
    store.make_dirs("other")
    (tmp_path / "other" / "volume.json").write_text(record("x").to_json())
    (tmp_path / "stray-file").write_text("")
    records, unfinished, errors = store.load()
    assert records == []
    assert unfinished == ["half"]
    assert len(errors) == 2 and "names volume 'x'" in errors[1]


def test_make_dirs_refuses_an_existing_directory(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    store.make_dirs("a")
    with pytest.raises(FileExistsError):
        store.make_dirs("a")


def test_remove_deletes_known_files_only(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    paths = store.make_dirs("a")
    store.write(record("a"))
    paths.image.write_bytes(b"x")
    store.remove("a")
    assert not paths.dir.exists()
    store.remove("a")  # again: nothing left, no error
    paths = store.make_dirs("b")
    (paths.mnt / "data").write_text("kept")  # as if still mounted: never walked
    with pytest.raises(OSError):
        store.remove("b")
    assert (paths.mnt / "data").read_text() == "kept"
