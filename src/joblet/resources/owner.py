"""Who owns a cgroup parent: the owner record and the decisions made from it.

A daemon owns its cgroup parent while it runs (a lock) and names itself in an
owner record (its root and pid) that stays after it is gone. A daemon of
another root must never take a parent whose owner is alive, nor one that still
holds the job groups of another root (their launcher may still run them), and
a daemon removes leftover job groups only where the record proves they are its
root's. Pure: the shell that locks and reads files is `ownership`.
"""

from __future__ import annotations

from dataclasses import dataclass

RECORD_VERSION = "1"


@dataclass(frozen=True)
class OwnerRecord:
    root: str  # joblet.root of the daemon that owns (or owned) the parent
    pid: int
    parent: str = ""  # the cgroup parent, for a human reading the file


def render_owner_record(record: OwnerRecord) -> str:
    return (
        f"version={RECORD_VERSION}\nroot={record.root}\npid={record.pid}\nparent={record.parent}\n"
    )


def parse_owner_record(text: str) -> OwnerRecord | None:
    """The record in `text`; None when it is not one (empty, torn, another version)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    if fields.get("version") != RECORD_VERSION or not fields.get("root", "").startswith("/"):
        return None
    try:
        pid = int(fields.get("pid", ""))
    except ValueError:
        return None
    if pid <= 0:
        return None
    return OwnerRecord(fields["root"], pid, fields.get("parent", ""))


def lock_name(parent: str) -> str:
    """The file name of a parent's lock: its path with '/' spelled '%' ('%' cannot
    appear in a parent's names, so no two parents share a name)."""
    return "/".join(p for p in parent.split("/") if p).replace("/", "%")


def refusal(
    parent: str, root: str, owner: OwnerRecord | None, owner_alive: bool, foreign_groups: int
) -> str | None:
    """Why a daemon of `root` may not own `parent`, None when it may.

    `owner`: the record found there; `owner_alive`: whether its lock is held;
    `foreign_groups`: job groups under the parent (counted only when the record
    names another root).
    """
    if owner_alive:
        if owner is not None and owner.root == root:
            return f"a daemon of root {root} already runs (pid {owner.pid}) on {parent!r}"
        return (
            f"cgroup parent {parent!r} is owned by {_describe(owner)}; "
            "give this daemon a cgroup.parent of its own"
        )
    if owner is not None and owner.root != root and foreign_groups:
        return (
            f"cgroup parent {parent!r} still holds {foreign_groups} job group(s) of "
            f"{_describe(owner)}, which is not running; start that root again to "
            "finish its jobs, or give this daemon a cgroup.parent of its own"
        )
    return None


def owns_leftovers(root: str, owner: OwnerRecord | None) -> bool:
    """Whether the job groups found under the parent are this root's: only when the
    record left there names it (a parent without one may hold anyone's groups)."""
    return owner is not None and owner.root == root


def _describe(owner: OwnerRecord | None) -> str:
    if owner is None:
        return "another running daemon (its owner record is unreadable)"
    return f"the daemon of root {owner.root} (pid {owner.pid})"
