"""The cap on each job process's open files, from the host's file table."""

from __future__ import annotations

from pathlib import Path

from joblet.jobs.open_files import FILE_TABLE_SHARE, open_files_cap, read_file_max


def test_a_job_holds_at_most_a_share_of_the_file_table() -> None:
    file_max = 2_466_255  # a 24 GB host
    cap = open_files_cap(4096, 1024, file_max)
    assert cap == file_max // FILE_TABLE_SHARE // 1024 == 602
    assert cap * 1024 <= file_max // FILE_TABLE_SHARE


def test_the_configured_limit_stays_when_the_table_is_big() -> None:
    assert open_files_cap(4096, 1024, 2**63 - 1) == 4096
    assert open_files_cap(4096, 64, 2_466_255) == 4096


def test_never_below_what_programs_need_nor_above_the_configured_limit() -> None:
    assert open_files_cap(4096, 1024, 10_000) == 64
    assert open_files_cap(32, 1024, 10_000) == 32


def test_unknown_counts_leave_the_limit_alone() -> None:
    assert open_files_cap(0, 1024, 2_466_255) == 0  # the launcher's own limits
    assert open_files_cap(4096, 0, 2_466_255) == 4096  # no pids limit
    assert open_files_cap(4096, 1024, 0) == 4096  # file-max unreadable


def test_file_max_is_read_from_procfs(tmp_path: Path) -> None:
    (tmp_path / "sys" / "fs").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "file-max").write_text("2466255\n")
    assert read_file_max(str(tmp_path)) == 2466255
    assert read_file_max(str(tmp_path / "missing")) == 0
    assert read_file_max() > 0
