"""Remote runtime sources: what a request's `repository` names, and whether a URL
is within `runtime.allowedSources`. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, unquote, urlsplit

from joblet.errors import InvalidArgument, PermissionDenied

DEFAULT_ALLOWED_SOURCES = ("https://github.com/", "https://codeload.github.com/")
DEFAULT_GITHUB_BASE = "https://github.com"

_OWNER_REPO = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
_BRANCH = re.compile(r"[A-Za-z0-9._/-]{1,200}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class RemoteSource:
    """Where to download a runtime's sources from."""

    kind: Literal["archive", "git"]
    url: str
    branch: str = ""  # git: the branch to clone ("" = the remote's HEAD)


def check_branch(branch: str) -> str:
    """A branch name as git allows it, and safe in a URL path and on argv."""
    bad = (
        not _BRANCH.fullmatch(branch)
        or branch.startswith(("-", "/", "."))
        or branch.endswith(("/", ".lock", "."))
        or ".." in branch
        or "//" in branch
        or "/." in branch
    )
    if bad:
        raise InvalidArgument(f"branch {branch!r}: not a valid branch name")
    return branch


def check_sha256(value: str) -> str:
    """The expected digest, lower-cased; "" when none was given."""
    digest = value.strip().lower()
    if digest and not _SHA256.fullmatch(digest):
        raise InvalidArgument(f"sha256 {value!r}: expected 64 hexadecimal digits")
    return digest


def _split_url(url: str) -> SplitResult:
    if any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in url):
        raise InvalidArgument(f"URL {url!r}: holds whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise InvalidArgument(f"URL {url!r}: {exc}") from exc
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidArgument(f"URL {url!r}: only http:// and https:// URLs with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(f"URL {url!r}: credentials in URLs are not accepted")
    return parts


def parse_source(repository: str, branch: str, github_base: str) -> RemoteSource:
    """`owner/repo` (its branch archive under `github_base`), an http(s) URL of a
    .zip/.tar.gz/.tgz archive, or an http(s) git URL."""
    repository = repository.strip()
    if _OWNER_REPO.fullmatch(repository) and ".." not in repository.split("/"):
        if "." in repository.split("/"):
            raise InvalidArgument(f"repository {repository!r}: not owner/repo")
        name = check_branch(branch or "main")
        base = github_base.rstrip("/")
        return RemoteSource("archive", f"{base}/{repository}/archive/refs/heads/{name}.tar.gz")
    if "://" not in repository:
        raise InvalidArgument(
            f"repository {repository!r}: expected owner/repo, an http(s) archive URL or a git URL"
        )
    parts = _split_url(repository)
    if parts.path.lower().endswith(_ARCHIVE_SUFFIXES):
        return RemoteSource("archive", repository)
    return RemoteSource("git", repository, check_branch(branch) if branch else "")


def _prefix_holds(prefix: SplitResult, url: SplitResult) -> bool:
    def port(p: SplitResult) -> int:
        return p.port or _DEFAULT_PORTS[p.scheme]

    if (prefix.scheme, prefix.hostname, port(prefix)) != (url.scheme, url.hostname, port(url)):
        return False
    if {".", ".."} & set(unquote(url.path).split("/")):
        return False  # the server would resolve them, perhaps out of the prefix
    base = prefix.path if prefix.path.endswith("/") else prefix.path + "/"
    return base == "/" or url.path.startswith(base) or url.path == base.rstrip("/")


def is_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether `url` lies under one of the prefixes, compared as scheme, host,
    port and whole path segments (so `https://github.com.evil/` is not under
    `https://github.com/`, nor `/owner-x` under `/owner`)."""
    try:
        target = _split_url(url)
    except InvalidArgument:
        return False
    return any(_prefix_holds(_split_url(p), target) for p in allowed)


def require_allowed(url: str, allowed: tuple[str, ...], *, what: str = "source") -> None:
    if not is_allowed(url, allowed):
        raise PermissionDenied(f"{what} {url} is not within runtime.allowedSources")


def check_allowed_sources(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    """Config validation: each prefix a plain http(s) URL."""
    for prefix in prefixes:
        _split_url(prefix)
    return prefixes
