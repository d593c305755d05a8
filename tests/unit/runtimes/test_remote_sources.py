"""Remote source names and the allowed-sources check (pure)."""

from __future__ import annotations

import pytest

from joblet.errors import InvalidArgument, PermissionDenied
from joblet.runtimes.remote import (
    DEFAULT_ALLOWED_SOURCES,
    DEFAULT_GITHUB_BASE,
    RemoteSource,
    check_sha256,
    is_allowed,
    parse_source,
    require_allowed,
)


def test_owner_repo_is_its_branch_archive_on_github() -> None:
    assert parse_source("ehsaniara/joblet", "", DEFAULT_GITHUB_BASE) == RemoteSource(
        "archive", "https://github.com/ehsaniara/joblet/archive/refs/heads/main.tar.gz"
    )
    got = parse_source("o/r", "release/1.x", "http://127.0.0.1:8080/gh/")
    assert got.url == "http://127.0.0.1:8080/gh/o/r/archive/refs/heads/release/1.x.tar.gz"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://example.com/x/runtime.zip", "archive"),
        ("https://example.com/x/runtime.tar.gz?sig=1", "archive"),
        ("http://127.0.0.1:9/r.TGZ", "archive"),
        ("https://example.com/x/repo.git", "git"),
        ("https://example.com/x/repo", "git"),
    ],
)
def test_urls_are_archives_or_git(url: str, kind: str) -> None:
    assert parse_source(url, "", DEFAULT_GITHUB_BASE).kind == kind


@pytest.mark.parametrize(
    ("repository", "why"),
    [
        ("git://example.com/r.git", "only http:// and https://"),
        ("ssh://git@github.com/o/r.git", "only http:// and https://"),
        ("git@github.com:o/r.git", "expected owner/repo"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("https://user:pw@github.com/o/r.zip", "credentials"),
        ("https://github.com/o/r .zip", "whitespace"),
        ("https://github.com:99999/o/r.zip", "Port out of range"),
        ("../x", "expected owner/repo"),
        ("o/..", "expected owner/repo"),
        ("./r", "not owner/repo"),
        ("", "expected owner/repo"),
    ],
)
def test_bad_repositories_are_invalid(repository: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why):
        parse_source(repository, "", DEFAULT_GITHUB_BASE)


@pytest.mark.parametrize(
    "branch", ["-upload-pack=x", "a..b", "a//b", "x.lock", "a b", "/a", "a/.b"]
)
def test_bad_branches_are_invalid(branch: str) -> None:
    with pytest.raises(InvalidArgument, match="not a valid branch name"):
        parse_source("o/r", branch, DEFAULT_GITHUB_BASE)
    with pytest.raises(InvalidArgument):
        parse_source("https://github.com/o/r.git", branch, DEFAULT_GITHUB_BASE)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://github.com/o/r/archive/refs/heads/main.tar.gz", True),
        ("https://codeload.github.com/o/r/tar.gz/refs/heads/main", True),
        ("https://GitHub.com/o/r.zip", True),
        ("https://github.com:443/o/r.zip", True),
        ("http://github.com/o/r.zip", False),
        ("https://github.com.evil.example/o/r.zip", False),
        ("https://github.com@evil.example/o/r.zip", False),
        ("https://github.com:8443/o/r.zip", False),
        ("https://api.github.com/o/r.zip", False),
        ("not a url", False),
    ],
)
def test_default_allowed_sources(url: str, ok: bool) -> None:
    assert is_allowed(url, DEFAULT_ALLOWED_SOURCES) is ok


def test_path_prefixes_hold_whole_segments_only() -> None:
    allowed = ("https://example.com/runtimes",)
    assert is_allowed("https://example.com/runtimes/a.zip", allowed)
    assert not is_allowed("https://example.com/runtimes-evil/a.zip", allowed)
    assert not is_allowed("https://example.com/runtimes/../secret/a.zip", allowed)
    assert not is_allowed("https://example.com/runtimes/%2e%2e/secret/a.zip", allowed)
    with pytest.raises(PermissionDenied, match=r"is not within runtime\.allowedSources"):
        require_allowed("https://example.com/other/a.zip", allowed)


def test_sha256_is_64_hex_digits() -> None:
    assert check_sha256("") == ""
    assert check_sha256(" AB" + "0" * 62) == "ab" + "0" * 62
    with pytest.raises(InvalidArgument, match="64 hexadecimal digits"):
        check_sha256("abc")
