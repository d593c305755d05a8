"""Archive member checks, on declared members only (no files)."""

from __future__ import annotations

import pytest

from joblet.runtimes.archive import (
    ArchiveError,
    Caps,
    Kind,
    Member,
    check_stream,
    plan,
    split_name,
    strip_top,
    to_entry,
)

CAPS = Caps(max_bytes=10 << 20, max_members=100, max_ratio=100, ratio_floor=1 << 16)


def f(name: str, size: int = 10, packed: int = -1, mode: int = 0o644) -> Member:
    return Member(name, Kind.FILE, size=size, packed=packed, mode=mode)


def d(name: str) -> Member:
    return Member(name, Kind.DIR)


def sym(name: str, target: str) -> Member:
    return Member(name, Kind.SYMLINK, link=target)


def hard(name: str, target: str) -> Member:
    return Member(name, Kind.HARDLINK, link=target)


def refused(members: list[Member], match: str, caps: Caps = CAPS, top: bool = False) -> None:
    with pytest.raises(ArchiveError, match=match):
        plan(members, caps, top=top)


def test_a_plain_tree_is_planned_in_order() -> None:
    entries = plan(
        [d("./"), d("a/"), f("a/x", mode=0o4755), sym("a/l", "x"), hard("h", "a/x")], CAPS
    )
    assert [(e.path, e.kind) for e in entries] == [
        ("a", Kind.DIR),
        ("a/x", Kind.FILE),
        ("a/l", Kind.SYMLINK),
        ("h", Kind.HARDLINK),
    ]
    assert entries[1].mode == 0o755  # setuid dropped, executable kept
    assert entries[3].source == ("a", "x")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/etc/passwd", "absolute path"),
        ("../evil", r"leaves the target \('\.\.'\)"),
        ("a/../../evil", r"'\.\.'"),
        ("a/b/..", r"'\.\.'"),
        ("a\\..\\evil", "backslash"),
        ("a\0b", "NUL"),
        ("", "empty name"),
    ],
)
def test_names_that_could_leave_the_target_are_refused(name: str, why: str) -> None:
    with pytest.raises(ArchiveError, match=why):
        split_name(name)
    refused([f(name)], why)


def test_dots_and_double_slashes_are_normalized() -> None:
    assert split_name("./a//b/./c") == ("a", "b", "c")


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("evil", "/etc"),
        ("evil", ".."),
        ("a/evil", "../.."),
        ("a/evil", "../b/../../x"),
    ],
)
def test_symlinks_leading_out_are_refused(link: str, target: str) -> None:
    refused([d("a/"), sym(link, target)], "leads out of the target")


def test_symlinks_out_through_another_archive_symlink_are_refused() -> None:
    # "up" points at the root (inside); "up/.." from inside a/ is the root's parent
    refused([d("a/"), sym("a/up", ".."), sym("a/out", "up/..")], "leads out")


def test_symlink_loops_are_refused() -> None:
    refused([sym("x", "y"), sym("y", "x/z")], "leads out")


def test_symlinks_inside_are_kept() -> None:
    entries = plan([d("a/"), f("a/f"), sym("a/l", "../a/f"), sym("top", "a")], CAPS)
    assert [e.target for e in entries if e.kind is Kind.SYMLINK] == ["../a/f", "a"]


@pytest.mark.parametrize(
    "members",
    [
        [sym("l", "a"), d("a/"), f("l/x")],  # a file written through a link inside
        [f("l/passwd"), sym("l", "d")],  # the link coming after the file
    ],
)
def test_members_through_a_symlink_are_refused(members: list[Member]) -> None:
    refused(members, "goes through the symlink 'l'")


def test_hard_links_only_to_earlier_files() -> None:
    refused([hard("h", "/etc/shadow")], "absolute path")
    refused([hard("h", "../x")], r"'\.\.'")
    refused([hard("h", "a"), f("a")], "not an earlier file")
    refused([sym("s", "a"), hard("h", "s")], "not an earlier file")
    refused([d("dir/"), hard("h", "dir")], "not an earlier file")


@pytest.mark.parametrize("what", ["character device", "block device", "fifo or special file"])
def test_special_files_are_refused(what: str) -> None:
    refused([Member("dev/x", Kind.SPECIAL, what=what)], f"{what} \\(not allowed\\)")


def test_duplicates_and_files_under_files_are_refused() -> None:
    refused([f("a"), f("a")], "appears twice")
    refused([d("a/"), f("a")], "appears twice")
    refused([f("a"), f("a/b")], "goes under the file 'a'")
    assert len(plan([d("a/"), d("a/")], CAPS)) == 2


def test_total_size_cap() -> None:
    refused([f("a", 6 << 20), f("b", 6 << 20)], "'b'.*past its cap of 10.0 MiB")
    assert len(plan([f("a", 5 << 20), f("b", 5 << 20)], CAPS)) == 2


def test_member_count_cap() -> None:
    refused([f(f"f{i}") for i in range(101)], "more than 100 members")
    assert len(plan([f(f"f{i}") for i in range(100)], CAPS)) == 100


def test_per_member_ratio_cap() -> None:
    refused([f("z", 1 << 20, packed=1000)], r"compressed 1048:1, over the cap of 100:1")
    # small members are not ratio-checked: a page of spaces compresses well
    assert plan([f("s", 4096, packed=20)], CAPS)
    assert plan([f("ok", 1 << 20, packed=20000)], CAPS)


def test_stream_ratio_cap() -> None:
    check_stream(100 * 1000 + CAPS.ratio_floor, 1000, CAPS)
    with pytest.raises(ArchiveError, match="over the cap of 100:1"):
        check_stream(100 * 1000 + CAPS.ratio_floor + 1, 1000, CAPS)


def test_the_target_root_entry_is_skipped_but_not_as_a_file() -> None:
    assert to_entry(0, d("./")) is None
    with pytest.raises(ArchiveError, match="names the target itself"):
        to_entry(0, f("."))


def test_strip_top_drops_one_shared_directory() -> None:
    entries = plan(
        [d("repo-main/"), f("repo-main/runtime.yml"), hard("repo-main/h", "repo-main/runtime.yml")],
        CAPS,
        top=True,
    )
    assert [e.path for e in entries] == ["runtime.yml", "h"]
    assert entries[1].source == ("runtime.yml",)
    # two tops, or a file at the top: nothing stripped
    two = [e.path for e in plan([f("a/x"), f("b/y")], CAPS, top=True)]
    assert two == ["a/x", "b/y"]
    assert [e.path for e in strip_top(plan([f("a"), f("a2/x")], CAPS))] == ["a", "a2/x"]


def test_a_link_to_the_old_top_is_out_after_stripping() -> None:
    refused([d("r/"), d("r/a/"), sym("r/a/l", "../../r")], "leads out", top=True)
