"""Removing a tree a job wrote: any depth, symlinks never followed, one
entry that cannot go does not keep the rest."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.jobs.tree_removal import remove_tree

pytestmark = pytest.mark.privileged

DEPTH = 1200  # past Python's recursion limit (and shutil.rmtree's)


def deep_tree(top: Path, depth: int = DEPTH) -> None:
    """`depth` nested directories under `top`, a file in each tenth; made
    relative to an open directory so no path exceeds PATH_MAX."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            os.mkdir("d", dir_fd=fd)
            if level % 10 == 0:
                os.close(os.open("f", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    """A file nothing may remove (chattr +i), made removable again at the end."""
    holder = tmp_path / "holder"
    holder.mkdir()
    path = holder / "pinned"
    path.write_text("x")
    try:
        chattr("+i", path)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"chattr +i not available here: {exc}")
    yield path
    # wherever removal left it
    subprocess.run(["chattr", "-R", "-i", str(tmp_path)], check=False, capture_output=True)


def test_deep_tree_and_outside_link(tmp_path: Path) -> None:
    top, outside = tmp_path / "work", tmp_path / "outside"
    deep_tree(top)
    outside.mkdir()
    (outside / "keep").write_text("keep")
    (top / "link").symlink_to(outside, target_is_directory=True)
    (top / "d" / "filelink").symlink_to(outside / "keep")
    assert remove_tree(top) == []
    assert not top.exists()
    assert (outside / "keep").read_text() == "keep"


def test_top_that_is_a_symlink_is_unlinked_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    (tmp_path / "top").symlink_to(outside)
    assert remove_tree(tmp_path / "top") == []
    assert (outside / "keep").exists() and not (tmp_path / "top").exists()


def test_missing_top_is_nothing_to_do(tmp_path: Path) -> None:
    assert remove_tree(tmp_path / "absent") == []


def test_one_undeletable_entry_is_reported_and_the_rest_goes(
    tmp_path: Path, immutable: Path
) -> None:
    top = immutable.parent
    deep_tree(top / "deep", 50)
    (top / "other").write_text("x")
    failures = remove_tree(top)
    assert [(f.path, f.was) for f in failures] == [(str(immutable), str(immutable))]
    assert "not permitted" in failures[0].reason
    assert sorted(p.name for p in top.iterdir()) == ["pinned"]


def test_an_entry_left_in_a_moved_directory_says_where_it_is(
    tmp_path: Path, immutable: Path
) -> None:
    top = immutable.parent.parent  # tmp_path: holder/pinned is one level down
    (failure,) = remove_tree(top)
    assert failure.was == str(immutable)
    assert Path(failure.path).exists() and Path(failure.path).name == "pinned"
    assert f"(was {immutable})" in str(failure)
