"""Unpacking real zip and tar.gz files, hostile ones included: each refused with a
clear message, the target left empty and nothing written outside it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import joblet
from joblet.runtimes.archive import ArchiveError, Caps, Entry, Kind
from joblet.runtimes.unpack import Writer, command, unpack, write

from .hostile_archives import (
    Spec,
    many_files_tar_gz,
    many_files_zip,
    write_tar_gz,
    write_zip,
    zeros_tar_gz,
    zeros_zip,
)

CAPS = Caps(max_bytes=256 << 20, max_members=10_000, max_ratio=200)
Maker = Callable[[Path, list[Spec]], Path]
FORMATS: dict[str, Maker] = {"tar.gz": write_tar_gz, "zip": write_zip}


def listing(root: Path) -> set[str]:
    """Every path under root, links not followed."""
    found = set()
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(top, name), root))
    return found


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep").write_text("x")
    target = tmp_path / "dest"
    target.mkdir()
    return target


def refused(archive: Path, dest: Path, match: str, caps: Caps = CAPS) -> None:
    before = listing(dest.parent)
    with pytest.raises(ArchiveError, match=match):
        unpack(str(archive), str(dest), caps)
    assert os.listdir(dest) == []
    assert listing(dest.parent) == before


GOOD: list[Spec] = [
    ("repo-main/", "dir", b""),
    ("repo-main/runtime.yml", "file", b"name: x\n"),
    ("repo-main/build.sh", "exec", b"#!/bin/sh\necho hi\n"),
    ("repo-main/sub/deep/f.txt", "file", b"deep"),
    ("repo-main/sub/link", "symlink", "deep/f.txt"),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_good_archive_unpacks_with_its_top_stripped(fmt: str, dest: Path) -> None:
    archive = FORMATS[fmt](dest.parent / f"a.{fmt}", GOOD)
    count, total = unpack(str(archive), str(dest), CAPS, top=True)
    assert (count, total) == (4, 8 + 18 + 4)
    assert (dest / "runtime.yml").read_text() == "name: x\n"
    assert os.readlink(dest / "sub" / "link") == "deep/f.txt"
    assert (dest / "sub" / "link").read_text() == "deep"
    assert (dest / "build.sh").stat().st_mode & 0o7777 == 0o755  # setuid dropped
    assert (dest / "runtime.yml").stat().st_mode & 0o7777 == 0o644


def test_tar_hard_links_are_linked(dest: Path) -> None:
    archive = write_tar_gz(dest.parent / "h.tar.gz", [("a", "file", b"A"), ("b", "hardlink", "a")])
    unpack(str(archive), str(dest), CAPS)
    assert (dest / "a").stat().st_ino == (dest / "b").stat().st_ino


@pytest.mark.parametrize("fmt", FORMATS)
def test_zip_slip_is_refused(fmt: str, dest: Path) -> None:
    archive = FORMATS[fmt](
        dest.parent / f"slip.{fmt}", [("ok", "file", b"1"), ("../outside/evil", "file", b"x")]
    )
    refused(archive, dest, r"'\.\./outside/evil': path leaves the target")


@pytest.mark.parametrize("fmt", FORMATS)
def test_absolute_paths_are_refused(fmt: str, dest: Path) -> None:
    victim = dest.parent / "outside" / f"abs-{uuid.uuid4().hex}"
    archive = FORMATS[fmt](dest.parent / f"abs.{fmt}", [(str(victim), "file", b"x")])
    refused(archive, dest, "absolute path")
    assert not victim.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_symlink_to_etc_then_a_file_through_it_is_refused(fmt: str, dest: Path) -> None:
    name = f"joblet-unpack-{uuid.uuid4().hex}"
    archive = FORMATS[fmt](
        dest.parent / f"etc.{fmt}", [("etc", "symlink", "/etc"), (f"etc/{name}", "file", b"x")]
    )
    refused(archive, dest, "symlink to '/etc' leads out of the target")
    assert not os.path.lexists(f"/etc/{name}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_relative_link_out_is_refused(fmt: str, dest: Path) -> None:
    archive = FORMATS[fmt](dest.parent / f"rel.{fmt}", [("d/up", "symlink", "../../outside")])
    refused(archive, dest, "leads out of the target")


@pytest.mark.parametrize("fmt", FORMATS)
def test_fifos_are_refused(fmt: str, dest: Path) -> None:
    archive = FORMATS[fmt](dest.parent / f"fifo.{fmt}", [("ok", "file", b"1"), ("p", "fifo", b"")])
    refused(archive, dest, "'p': .*(fifo|device).*not allowed")


def test_device_files_are_refused(dest: Path) -> None:
    archive = write_tar_gz(dest.parent / "dev.tar.gz", [("null", "chr", b"")])
    refused(archive, dest, "'null': character device")


@pytest.mark.parametrize("maker", [zeros_tar_gz, zeros_zip])
def test_two_gib_of_zeros_is_refused(maker: Callable[[Path, int], Path], dest: Path) -> None:
    archive = maker(dest.parent / "zeros", 2048)
    assert archive.stat().st_size < 8 << 20
    refused(archive, dest, r"'zeros': 2.0 GiB takes the archive past its cap of 256.0 MiB")


def test_a_zip_member_over_the_ratio_cap_is_refused(dest: Path) -> None:
    archive = zeros_zip(dest.parent / "z.zip", 64)
    with zipfile.ZipFile(archive) as zf:  # the crafted zip is a real one
        assert zf.testzip() is None
    refused(archive, dest, r"'zeros': compressed \d+:1, over the cap of 200:1")


def test_a_tar_gz_stream_over_the_ratio_cap_stops_while_inflating(dest: Path) -> None:
    archive = zeros_tar_gz(dest.parent / "z.tar.gz", 64)
    refused(archive, dest, r"archive expands .* over the cap of 200:1")
    loose = Caps(max_bytes=256 << 20, max_members=10, max_ratio=10_000)
    assert unpack(str(archive), str(dest), loose) == (1, 64 << 20)


@pytest.mark.parametrize("maker", [many_files_tar_gz, many_files_zip])
def test_a_hundred_thousand_files_are_refused(
    maker: Callable[[Path, int], Path], dest: Path
) -> None:
    archive = maker(dest.parent / "many", 100_000)
    refused(archive, dest, "archive has more than 10000 members")


def test_damaged_and_foreign_files_are_refused(dest: Path) -> None:
    good = write_tar_gz(dest.parent / "g.tar.gz", [("a", "file", os.urandom(200_000))])
    cut = dest.parent / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[:100_000])
    refused(cut, dest, "damaged archive")
    text = dest.parent / "t.txt"
    text.write_text("hello")
    refused(text, dest, "not a zip, tar.gz or tar archive")


def test_the_writer_never_follows_a_link_even_one_it_made(dest: Path) -> None:
    # the checks would refuse this plan; the writer alone must still stay inside
    outside = dest.parent / "outside"
    writer = Writer(os.open(dest, os.O_RDONLY | os.O_DIRECTORY))
    try:
        write(writer, Entry(0, ("l",), Kind.SYMLINK, target=str(outside)), _no_data)
        with pytest.raises(ArchiveError, match="'l/evil'"):
            write(writer, Entry(1, ("l", "evil"), Kind.FILE, size=1), _no_data)
        with pytest.raises(ArchiveError, match="'l'"):
            write(writer, Entry(2, ("l",), Kind.FILE, size=1), _no_data)
    finally:
        writer.close()
        os.close(writer.dest_fd)
    assert sorted(os.listdir(outside)) == ["keep"]
    assert os.readlink(dest / "l") == str(outside)


def test_the_writer_never_writes_into_an_existing_file(dest: Path) -> None:
    # a second write of a path would reach every hard link of the first
    writer = Writer(os.open(dest, os.O_RDONLY | os.O_DIRECTORY))
    try:
        write(writer, Entry(0, ("a",), Kind.FILE, size=1), lambda: io.BytesIO(b"1"))
        write(writer, Entry(1, ("h",), Kind.HARDLINK, source=("a",)), _no_data)
        with pytest.raises(ArchiveError, match="'h': File exists"):
            write(writer, Entry(2, ("h",), Kind.FILE, size=1), lambda: io.BytesIO(b"2"))
    finally:
        writer.close()
        os.close(writer.dest_fd)
    assert (dest / "a").read_bytes() == b"1"


def _no_data() -> zipfile.ZipExtFile:
    raise AssertionError("the data of a refused member was read")


def test_the_entry_point_runs_on_the_host_python_alone(dest: Path) -> None:
    """The sandbox has the host's python3 (no site packages) and this package."""
    host = "/usr/bin/python3"
    if not os.access(host, os.X_OK):
        pytest.skip("no host /usr/bin/python3")
    libdir = str(Path(joblet.__file__).parent.parent)
    good = write_tar_gz(dest.parent / "g.tar.gz", GOOD)
    argv = command(libdir, str(good), str(dest), CAPS, top=True)
    argv[argv.index("python3")] = host
    env = {"PATH": "/usr/bin:/bin"}
    run = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=60)
    assert (run.returncode, run.stdout, run.stderr) == (0, "unpacked 4 entries, 30 bytes\n", "")
    assert (dest / "build.sh").is_file()

    bad = write_zip(dest.parent / "b.zip", [("../evil", "file", b"x")])
    other = dest.parent / "other"
    argv = command(libdir, str(bad), str(other), CAPS, top=False)
    argv[argv.index("python3")] = host
    run = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 2
    assert run.stderr == "unpack: archive member '../evil': path leaves the target ('..')\n"
    assert os.listdir(other) == []
    assert sys.executable  # the test's own interpreter was not the one used


def test_the_writer_holds_a_member_to_its_declared_size(dest: Path) -> None:
    # the readers stop at the declared size too; the writer does not rely on it
    writer = Writer(os.open(dest, os.O_RDONLY | os.O_DIRECTORY))
    try:
        with pytest.raises(ArchiveError, match="'big': longer than declared"):
            write(
                writer, Entry(0, ("big",), Kind.FILE, size=3), lambda: io.BytesIO(b"1" * (3 << 20))
            )
        with pytest.raises(ArchiveError, match="'small': shorter than declared"):
            write(writer, Entry(1, ("small",), Kind.FILE, size=3), lambda: io.BytesIO(b"1"))
    finally:
        writer.close()
        os.close(writer.dest_fd)
    assert (dest / "big").stat().st_size <= 3
