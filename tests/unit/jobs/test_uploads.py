from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest

from joblet.errors import InvalidArgument
from joblet.jobs.model import Upload
from joblet.jobs.uploads import normalize_upload_path, upload_mode, write_uploads


def f(path: str, content: bytes = b"", mode: int = 0) -> Upload:
    return Upload(path, content, mode, False)


def d(path: str, mode: int = 0) -> Upload:
    return Upload(path, b"", mode, True)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "work"
    workspace.mkdir()
    return workspace


def perms(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_files_and_directories(ws: Path) -> None:
    written = write_uploads(
        ws,
        [d("src", 0o750), f("src/main.py", b"print(1)\n", 0o755), f("deep/er/x.txt", b"x")],
    )
    assert written == ("src", "src/main.py", "deep/er/x.txt")
    assert (ws / "src/main.py").read_bytes() == b"print(1)\n"
    assert (ws / "deep/er/x.txt").read_bytes() == b"x"
    assert perms(ws / "src") == 0o750
    assert perms(ws / "src/main.py") == 0o755
    assert perms(ws / "deep") == 0o755
    assert perms(ws / "deep/er") == 0o755


def test_directory_entry_after_its_children_sets_its_mode(ws: Path) -> None:
    write_uploads(ws, [f("d/x", b"1"), d("d", 0o700)])
    assert perms(ws / "d") == 0o700
    assert (ws / "d/x").read_bytes() == b"1"


def test_default_modes_ignore_umask(ws: Path) -> None:
    old = os.umask(0o077)
    try:
        write_uploads(ws, [f("file", b"1"), d("dir"), f("p/q", b"2")])
    finally:
        os.umask(old)
    assert perms(ws / "file") == 0o644
    assert perms(ws / "dir") == 0o755
    assert perms(ws / "p") == 0o755


@pytest.mark.parametrize(
    ("mode", "applied"),
    [(0o600, 0o600), (0o4755, 0o755), (0o2755, 0o755), (0o6777, 0o777), (0o1777, 0o1777)],
)
def test_setuid_and_setgid_are_stripped(ws: Path, mode: int, applied: int) -> None:
    write_uploads(ws, [f("bin", b"#!/bin/sh\n", mode), d("dir", mode)])
    assert perms(ws / "bin") == applied
    assert perms(ws / "dir") == applied


@pytest.mark.parametrize(
    ("mode", "is_dir", "expected"),
    [(0, False, 0o644), (0, True, 0o755), (0o4711, False, 0o711), (0o1700, True, 0o1700)],
)
def test_upload_mode(mode: int, is_dir: bool, expected: int) -> None:
    assert upload_mode(mode, is_dir) == expected


def test_empty_and_large_files(ws: Path) -> None:
    big = os.urandom(3 * 1024 * 1024 + 7)
    write_uploads(ws, [f("empty"), f("big", big)])
    assert (ws / "empty").read_bytes() == b""
    assert (ws / "big").read_bytes() == big


def test_existing_regular_file_is_rewritten(ws: Path) -> None:
    (ws / "f").write_bytes(b"a much longer old content")
    write_uploads(ws, [f("f", b"new", 0o600)])
    assert (ws / "f").read_bytes() == b"new"
    assert perms(ws / "f") == 0o600


def test_existing_directories_are_reused_without_mode_change(ws: Path) -> None:
    (ws / "keep").mkdir(mode=0o700)
    os.chmod(ws / "keep", 0o700)
    write_uploads(ws, [f("keep/x", b"1")])
    assert perms(ws / "keep") == 0o700


def test_workspace_path_may_itself_go_through_a_symlink(tmp_path: Path, ws: Path) -> None:
    # The workspace path is the daemon's own and trusted; only what is below it is not.
    link = tmp_path / "ws-link"
    link.symlink_to(ws)
    write_uploads(link, [f("x", b"1")])
    assert (ws / "x").read_bytes() == b"1"


def test_symlinked_directory_to_etc_is_not_followed(ws: Path) -> None:
    name = f"joblet-test-{uuid.uuid4().hex}"
    (ws / "a").symlink_to("/etc")
    with pytest.raises(InvalidArgument, match="'a/" + name + "'"):
        write_uploads(ws, [f(f"a/{name}", b"pwned")])
    assert not os.path.lexists(f"/etc/{name}")


def test_symlinked_file_is_not_written_through(tmp_path: Path, ws: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "passwd-copy"
    target.write_bytes(b"root:x:0:0\n")
    os.chmod(target, 0o644)
    (ws / "f").symlink_to(target)
    with pytest.raises(InvalidArgument, match="symlink"):
        write_uploads(ws, [f("f", b"pwned", 0o777)])
    assert target.read_bytes() == b"root:x:0:0\n"
    assert perms(target) == 0o644
    assert (ws / "f").is_symlink()


def test_dangling_symlink_is_not_created_through(tmp_path: Path, ws: Path) -> None:
    target = tmp_path / "would-be-created"
    (ws / "f").symlink_to(target)
    with pytest.raises(InvalidArgument):
        write_uploads(ws, [f("f", b"pwned")])
    assert not target.exists()


def test_symlinked_directory_upload_is_not_chmodded(tmp_path: Path, ws: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    os.chmod(outside, 0o700)
    (ws / "d").symlink_to(outside)
    with pytest.raises(InvalidArgument):
        write_uploads(ws, [d("d", 0o777)])
    assert perms(outside) == 0o700


def test_symlink_deep_in_the_path(tmp_path: Path, ws: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws / "a/b").mkdir(parents=True)
    (ws / "a/b/c").symlink_to(outside)
    with pytest.raises(InvalidArgument):
        write_uploads(ws, [f("a/b/c/d/x", b"1")])
    assert list(outside.iterdir()) == []


def test_hard_link_to_outside_file_is_not_rewritten(tmp_path: Path, ws: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_bytes(b"keep")
    os.link(outside, ws / "f")
    with pytest.raises(InvalidArgument):
        write_uploads(ws, [f("f", b"pwned")])
    assert outside.read_bytes() == b"keep"


def test_fifo_in_the_way_does_not_hang(ws: Path) -> None:
    os.mkfifo(ws / "p")
    with pytest.raises(InvalidArgument):
        write_uploads(ws, [f("p", b"x")])


def test_file_where_a_directory_is_needed(ws: Path) -> None:
    (ws / "f").write_bytes(b"")
    with pytest.raises(InvalidArgument, match="'f/x'"):
        write_uploads(ws, [f("f/x", b"1")])
    with pytest.raises(InvalidArgument, match="'f'"):
        write_uploads(ws, [d("f")])


def test_directory_where_a_file_is_needed(ws: Path) -> None:
    (ws / "d").mkdir()
    with pytest.raises(InvalidArgument, match="'d'"):
        write_uploads(ws, [f("d", b"1")])
    assert (ws / "d").is_dir()


@pytest.mark.parametrize("path", ["/etc/x", "../x", "a/../../x", "", ".", "a\0"])
def test_escaping_paths_refused_before_any_write(tmp_path: Path, ws: Path, path: str) -> None:
    with pytest.raises(InvalidArgument):
        write_uploads(ws, [f(path, b"pwned")])
    assert list(ws.iterdir()) == []
    assert not (tmp_path / "x").exists()


def test_paths_are_normalised(ws: Path) -> None:
    assert write_uploads(ws, [f("./a//b/./c", b"1")]) == ("a/b/c",)
    assert (ws / "a/b/c").read_bytes() == b"1"


@pytest.mark.parametrize(("path", "normal"), [("a", "a"), ("a/./b/", "a/b"), ("..x", "..x")])
def test_normalize_upload_path(path: str, normal: str) -> None:
    assert normalize_upload_path(path) == normal


def test_missing_workspace_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_uploads(tmp_path / "absent", [f("x", b"1")])


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_owner_applies_to_created_entries(ws: Path) -> None:
    (ws / "existing").mkdir()
    write_uploads(ws, [f("existing/new/x", b"1"), d("dir")], owner=(1234, 2345))
    for path in (ws / "existing/new", ws / "existing/new/x", ws / "dir"):
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (1234, 2345), path
    assert (ws / "existing").lstat().st_uid == os.geteuid()


def test_no_fd_is_leaked(ws: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    write_uploads(ws, [f(f"d{n}/e/x", b"1") for n in range(20)])
    with pytest.raises(InvalidArgument):
        (ws / "l").symlink_to("/etc")
        write_uploads(ws, [f("l/x", b"1")])
    assert len(os.listdir("/proc/self/fd")) == before
