"""Archive member checks: what an unpacked runtime source may contain.

Pure: takes the members an archive declares (zip or tar) and returns what may be
written where, or refuses the whole archive with the first problem. Refused:
absolute paths, `..`, links leading out of the target or written through,
device files and fifos, and archives whose declared sizes, member count or
compression ratio pass the caps. The writer (`joblet.runtimes.unpack`) still
never follows a link, so a check missed here cannot write outside.

Standard library only: it runs inside the build sandbox with the host's python3.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

_MAX_LINK_HOPS = 40  # the kernel's own limit on symlinks in one lookup (path_resolution(7))


class ArchiveError(ValueError):
    """The archive is refused; the message names the member and why."""


class Kind(enum.Enum):
    FILE = "file"
    DIR = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hard link"
    SPECIAL = "special file"  # devices, fifos, sockets: never written


@dataclass(frozen=True)
class Member:
    """One member as the archive declares it."""

    name: str
    kind: Kind
    size: int = 0  # uncompressed bytes of a file
    packed: int = -1  # compressed bytes, where the format says (zip); -1 = unknown
    link: str = ""  # a symlink's target, or the member a hard link names
    mode: int = 0o644
    what: str = ""  # for SPECIAL: "character device", "fifo", ...


@dataclass(frozen=True)
class Caps:
    """Limits on what an archive may unpack to."""

    max_bytes: int  # total uncompressed bytes of all files
    max_members: int
    max_ratio: float  # uncompressed / compressed, per member (zip) or over the stream (tar)
    ratio_floor: int = 1 << 20  # smaller members (or stream prefixes) are not ratio-checked


@dataclass(frozen=True)
class Entry:
    """A checked member: where it goes, relative to the target directory."""

    index: int  # position in the archive
    parts: tuple[str, ...]
    kind: Kind
    size: int = 0
    mode: int = 0o644
    target: str = ""  # symlink target, as given (relative)
    source: tuple[str, ...] = ()  # hard link: the earlier file it names

    @property
    def path(self) -> str:
        return "/".join(self.parts)


def _refuse(name: str, why: str) -> ArchiveError:
    return ArchiveError(f"archive member {name!r}: {why}")


def split_name(name: str) -> tuple[str, ...]:
    """The path components of a member name; refuses names that could leave the target."""
    if not name:
        raise _refuse(name, "empty name")
    if "\0" in name:
        raise _refuse(name, "name holds a NUL byte")
    if "\\" in name:
        raise _refuse(name, "name holds a backslash (a Windows separator)")
    if name.startswith("/"):
        raise _refuse(name, "absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _refuse(name, "path leaves the target ('..')")
    return parts


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # not reached


class Tally:
    """Running totals against the caps, fed one member at a time so a streamed
    archive is refused at the first header over a cap, before its data is read."""

    def __init__(self, caps: Caps) -> None:
        self.caps = caps
        self.members = 0
        self.bytes = 0

    def add(self, member: Member) -> None:
        caps = self.caps
        self.members += 1
        if self.members > caps.max_members:
            raise ArchiveError(f"archive has more than {caps.max_members} members")
        if member.kind is Kind.SPECIAL:
            raise _refuse(member.name, f"{member.what or 'special file'} (not allowed)")
        if member.kind is not Kind.FILE:
            return
        if member.size < 0:
            raise _refuse(member.name, "negative size")
        self.bytes += member.size
        if self.bytes > caps.max_bytes:
            raise _refuse(
                member.name,
                f"{_human(member.size)} takes the archive past its cap of "
                f"{_human(caps.max_bytes)} unpacked",
            )
        packed = max(member.packed, 1)
        if member.packed >= 0 and caps.ratio_floor < member.size > caps.max_ratio * packed:
            raise _refuse(
                member.name,
                f"compressed {member.size // packed}:1, over the cap of {caps.max_ratio:g}:1",
            )


def check_stream(unpacked: int, packed: int, caps: Caps) -> None:
    """Refuses a compressed stream once its output outgrows the ratio cap."""
    if (
        unpacked > caps.ratio_floor
        and unpacked > caps.max_ratio * max(packed, 1) + caps.ratio_floor
    ):
        raise ArchiveError(
            f"archive expands {_human(unpacked)} from {_human(packed)}, "
            f"over the cap of {caps.max_ratio:g}:1"
        )


def to_entry(index: int, member: Member) -> Entry | None:
    """The member as a target-relative entry; None for the target's own root ("./")."""
    parts = split_name(member.name)
    if not parts:
        if member.kind is Kind.DIR:
            return None
        raise _refuse(member.name, "names the target itself")
    mode = 0o755 if member.kind is Kind.DIR or member.mode & 0o111 else 0o644
    if member.kind is Kind.SYMLINK:
        if not member.link or "\0" in member.link:
            raise _refuse(member.name, "symlink with an empty or NUL target")
        if member.link.startswith("/"):
            raise _refuse(member.name, f"symlink to {member.link!r} leads out of the target")
        return Entry(index, parts, Kind.SYMLINK, target=member.link)
    if member.kind is Kind.HARDLINK:
        return Entry(index, parts, Kind.HARDLINK, source=split_name(member.link))
    return Entry(index, parts, member.kind, size=member.size, mode=mode)


def strip_top(entries: Sequence[Entry]) -> list[Entry]:
    """Drops the one top directory every entry shares (a GitHub archive's
    `repo-branch/`); entries without such a directory are returned as they are."""
    tops = {e.parts[0] for e in entries}
    if len(tops) != 1 or not any(len(e.parts) > 1 for e in entries):
        return list(entries)
    if any(len(e.parts) == 1 and e.kind is not Kind.DIR for e in entries):
        return list(entries)
    return [
        replace(e, parts=e.parts[1:], source=e.source[1:] if e.source else ())
        for e in entries
        if len(e.parts) > 1
    ]


def _resolve(start: tuple[str, ...], target: str, links: dict[tuple[str, ...], str]) -> bool:
    """Whether `target`, followed from directory `start` through the archive's own
    symlinks, stays inside the target directory."""
    pending = [p for p in target.split("/") if p not in ("", ".")]
    at = list(start)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not at:
                return False
            at.pop()
            continue
        at.append(part)
        inner = links.get(tuple(at))
        if inner is None:
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS or inner.startswith("/"):
            return False
        at.pop()
        pending = [p for p in inner.split("/") if p not in ("", ".")] + pending
    return True


def check_layout(entries: Sequence[Entry]) -> None:
    """Refuses duplicates, members under files or links, links leading out, and
    hard links to anything but an earlier regular file."""
    kinds: dict[tuple[str, ...], Kind] = {}
    links = {e.parts: e.target for e in entries if e.kind is Kind.SYMLINK}
    for e in entries:
        for cut in range(1, len(e.parts)):
            above = kinds.get(e.parts[:cut]) or (Kind.SYMLINK if e.parts[:cut] in links else None)
            if above is Kind.SYMLINK:
                raise _refuse(e.path, f"goes through the symlink {'/'.join(e.parts[:cut])!r}")
            if above not in (None, Kind.DIR):
                raise _refuse(e.path, f"goes under the {above.value} {'/'.join(e.parts[:cut])!r}")
            kinds.setdefault(e.parts[:cut], Kind.DIR)
        seen = kinds.get(e.parts)
        if seen is not None and not (seen is Kind.DIR and e.kind is Kind.DIR):
            raise _refuse(e.path, "appears twice in the archive")
        if e.kind is Kind.SYMLINK and not _resolve(e.parts[:-1], e.target, links):
            raise _refuse(e.path, f"symlink to {e.target!r} leads out of the target")
        if e.kind is Kind.HARDLINK and kinds.get(e.source) is not Kind.FILE:
            raise _refuse(e.path, f"hard link to {'/'.join(e.source)!r}, not an earlier file")
        kinds[e.parts] = e.kind


def plan(members: Iterable[Member], caps: Caps, *, top: bool = False) -> list[Entry]:
    """Every member checked; the entries to write, in archive order."""
    tally = Tally(caps)
    entries: list[Entry] = []
    for index, member in enumerate(members):
        tally.add(member)
        entry = to_entry(index, member)
        if entry is not None:
            entries.append(entry)
    if top:
        entries = strip_top(entries)
    check_layout(entries)
    return entries
