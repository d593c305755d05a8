"""walk_groups and read_pids over a directory tree standing in for cgroupfs."""

from __future__ import annotations

import os
from pathlib import Path

from joblet.resources import _fs


def test_walk_groups_lists_sub_groups_parents_first(tmp_path: Path) -> None:
    job = tmp_path / "job"
    (job / "a" / "b").mkdir(parents=True)
    (job / "c").mkdir()
    (job / "cgroup.procs").write_text("7\n")
    (job / "a" / "b" / "cgroup.procs").write_text("8\n9\n")
    assert _fs.walk_groups(job) == [job, job / "a", job / "c", job / "a" / "b"]
    assert _fs.read_pids(job) == {7, 8, 9}


def test_walk_groups_of_a_leaf_and_of_nothing(tmp_path: Path) -> None:
    leaf = tmp_path / "leaf"
    leaf.mkdir()
    (leaf / "cgroup.procs").write_text("3\n")
    if os.stat(leaf).st_nlink == 2:  # the file system counts sub-directories
        assert _fs.walk_groups(leaf) == [leaf]
    assert _fs.read_pids(leaf) == {3}
    assert _fs.walk_groups(tmp_path / "gone") == []
    assert _fs.walk_groups(leaf / "cgroup.procs") == []


def test_read_small_reads_past_one_chunk_and_reports_absence(tmp_path: Path) -> None:
    big = tmp_path / "io.stat"
    text = "".join(f"8:{n} rbytes={n} wbytes=0\n" for n in range(10_000))
    big.write_text(text)
    assert len(text) > 2 * _fs.READ_CHUNK
    assert _fs.read_small(big) == text.encode()
    assert _fs.read_text(big) == text
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * _fs.READ_CHUNK)
    assert _fs.read_small(exact) == b"x" * _fs.READ_CHUNK
    assert _fs.read_text(tmp_path / "gone") is None
