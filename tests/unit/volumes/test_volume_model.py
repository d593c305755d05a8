"""Pure volume rules: names, sizes, types, job entries, the state record."""

from __future__ import annotations

import pytest

from joblet.errors import InvalidArgument
from joblet.volumes.model import (
    VolumeRecord,
    VolumeType,
    check_name,
    job_mount_path,
    parse_entry,
    parse_size,
    parse_type,
)

GB = 1000**3


@pytest.mark.parametrize("name", ["a", "data", "A1", "x.y", "my_vol-2", "9", "a" * 64, "a.b.c"])
def test_good_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "../x", "..", "a/b", "/abs", ".hidden", "-x", "_x", "a..b", "a" * 65, "sp ace",
     "new\nline", "a:ro", "ü"],
)  # fmt: skip
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid volume name"):
        check_name(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500MB", 500 * 1000**2), ("1GB", GB), ("1GiB", 1024**3), ("2mib", 2 * 1024**2),
     ("1048576", 1024**2), (" 10GB ", 10 * GB)],
)  # fmt: skip
def test_sizes_take_decimal_and_binary_units(text: str, expected: int) -> None:
    assert parse_size(text, 100 * GB) == expected


def test_size_above_the_cap_names_the_setting() -> None:
    with pytest.raises(InvalidArgument, match=r"volumes\.maxSize"):
        parse_size("101GB", 100 * GB)
    assert parse_size("100GB", 100 * GB) == 100 * GB


@pytest.mark.parametrize("text", ["", "abc", "1XB", "-5MB", "1000KB"])
def test_bad_or_tiny_sizes_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_size(text, 100 * GB)


def test_types_default_to_filesystem() -> None:
    assert parse_type("") is VolumeType.FILESYSTEM
    assert parse_type("Memory") is VolumeType.MEMORY
    with pytest.raises(InvalidArgument, match="filesystem or memory"):
        parse_type("nfs")


def test_entries_are_name_or_name_ro() -> None:
    assert parse_entry("data") == ("data", False)
    assert parse_entry("data:ro") == ("data", True)
    for bad in ("data:rw", "../x:ro", ":ro", "a:ro:ro"):
        with pytest.raises(InvalidArgument):
            parse_entry(bad)


def test_job_mount_path_stays_under_volumes() -> None:
    assert job_mount_path("data") == "/volumes/data"
    with pytest.raises(InvalidArgument):
        job_mount_path("../etc")


def test_record_round_trips_through_json() -> None:
    record = VolumeRecord("data", "1GB", GB, VolumeType.FILESYSTEM, "2024-05-01T10:00:00+00:00",
                          "/r/volumes/data/image")  # fmt: skip
    assert VolumeRecord.from_json(record.to_json()) == record
    memory = VolumeRecord("m", "8MB", 8 * 1000**2, VolumeType.MEMORY, "2024-05-01T10:00:00+00:00")
    assert VolumeRecord.from_json(memory.to_json()) == memory


@pytest.mark.parametrize(
    "text",
    ["[]", "{}", '{"name": "../x", "size": "1", "size_bytes": 1, "type": "memory", "created": ""}',
     '{"name": "x", "size": "1", "size_bytes": 1, "type": "nfs", "created": ""}'],
)  # fmt: skip
def test_bad_records_are_refused(text: str) -> None:
    with pytest.raises((ValueError, KeyError)):
        VolumeRecord.from_json(text)
