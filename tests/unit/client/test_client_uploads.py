"""Reading local files and directory trees into upload entries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from joblet.client.errors import CliError
from joblet.client.uploads import collect_uploads, directory_upload, file_upload


def test_file_upload_keeps_basename_and_mode(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_bytes(b"#!/bin/sh\n")
    script.chmod(0o750)
    entry = file_upload(script)
    assert (entry.path, entry.content, entry.mode, entry.is_directory) == (
        "run.sh",
        b"#!/bin/sh\n",
        0o750,
        False,
    )


def test_directory_upload_is_recursive_under_the_basename(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("A")
    (root / "src" / "pkg" / "m.py").write_text("M")
    (root / "src" / "pkg").chmod(0o700)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("S")
    (root / "link-to-dir").symlink_to(outside)  # skipped: no cycles, no escapes
    (root / "link-to-file").symlink_to(root / "a.txt")  # read through
    entries = {e.path: e for e in directory_upload(root)}
    assert sorted(entries) == [
        "proj",
        "proj/a.txt",
        "proj/empty",
        "proj/link-to-file",
        "proj/src",
        "proj/src/pkg",
        "proj/src/pkg/m.py",
    ]
    assert entries["proj/src/pkg"].is_directory and entries["proj/src/pkg"].mode == 0o700
    assert entries["proj/src/pkg/m.py"].content == b"M"
    assert entries["proj/link-to-file"].content == b"A"
    # a directory entry comes before anything inside it
    order = [e.path for e in directory_upload(root)]
    assert order.index("proj/src") < order.index("proj/src/pkg") < order.index("proj/src/pkg/m.py")


@pytest.mark.parametrize("hop", [False, True], ids=["direct", "through-a-link-in-the-tree"])
def test_a_link_to_a_file_outside_the_tree_is_refused(tmp_path: Path, hop: bool) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE")
    if hop:  # a link in the tree to a link that leaves it
        (root / "inner").symlink_to(secret)
        (root / "key").symlink_to(root / "inner")
    else:
        (root / "key").symlink_to(secret)
    with pytest.raises(CliError, match="outside") as caught:
        directory_upload(root)
    assert str(secret) in str(caught.value) and caught.value.exit_code == 2
    (root / "key").unlink()
    if hop:
        (root / "inner").unlink()
    (root / "key").symlink_to("../proj/./a.txt")  # relative, and inside after all
    (root / "a.txt").write_text("A")
    assert {e.path: e.content for e in directory_upload(root)}["proj/key"] == b"A"


def test_errors_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="it is a directory") as caught:
        file_upload(tmp_path)
    assert caught.value.exit_code == 2
    with pytest.raises(CliError, match="No such file"):
        file_upload(tmp_path / "missing")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(CliError, match="not a regular file"):  # and it does not block
        file_upload(fifo)
    with pytest.raises(CliError, match="not a directory"):
        directory_upload(tmp_path / "missing")


def test_two_uploads_landing_on_one_path_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x").write_text("1")
    (tmp_path / "b" / "x").write_text("2")
    with pytest.raises(CliError, match="'x'"):
        collect_uploads([str(tmp_path / "a" / "x"), str(tmp_path / "b" / "x")], [])
    assert [
        e.path for e in collect_uploads([str(tmp_path / "a" / "x")], [str(tmp_path / "b")])
    ] == [
        "x",
        "b",
        "b/x",
    ]
